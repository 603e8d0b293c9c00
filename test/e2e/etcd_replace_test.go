package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/etcd"
)

// TestEtcdMemberReplace replaces members of the lab's real 3-member etcd
// with the bundled playbook, while the API server is polled:
//  1. with cp3's member stopped, replacing healthy cp2 is refused before any
//     membership call (the audit log of etcd calls stays empty);
//  2. replacing the stopped cp3 with a new machine, cp4, succeeds;
//  3. replacing healthy cp4 with cp3 again succeeds too (cp3's old data dir
//     is moved aside and it joins fresh), and puts the lab back;
//  4. a second run of 3 is a no-op.
//
// A key written at the start is read back from the new member itself.
func TestEtcdMemberReplace(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	cp4 := l.WithStandaloneNode(t, "cp4")
	restored := false
	t.Cleanup(func() {
		if !restored {
			t.Log("the lab's etcd was not put back: the next test rebuilds the cluster")
			l.MarkDirty()
		}
	})
	k, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}

	// a key written before, through cp1
	cli := etcdClient(t, l, "cp1", etcd.DefaultEndpoint)
	if _, err := cli.Put(ctx, "kubeplay-e2e/before-replace", "kept"); err != nil {
		t.Fatal(err)
	}

	// the API is polled throughout; quorum is never lost, so it never fails
	pctx, stopPoll := context.WithCancel(ctx)
	var mu sync.Mutex
	var polls int
	var pollErrs []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			rctx, cancel := context.WithTimeout(pctx, 10*time.Second)
			_, err := k.CoreV1().Namespaces().Get(rctx, "kube-system", metav1.GetOptions{})
			cancel()
			mu.Lock()
			if pctx.Err() == nil {
				polls++
				if err != nil {
					pollErrs = append(pollErrs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
			}
			mu.Unlock()
			time.Sleep(300 * time.Millisecond)
		}
	}()

	// cp3's member stops: its manifest leaves the kubelet's directory
	if _, err := l.Exec(ctx, "cp3", "mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd.yaml.e2e"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "etcd on cp3 to stop", func() (bool, string) {
		out, _ := l.Exec(ctx, "cp3", "ss -Hltn 'sport = :2379' | wc -l")
		return strings.TrimSpace(out) == "0", out
	})

	dir := t.TempDir()
	replace := func(member, newHost string) (result, *observer.ObservedLogs) {
		return runReplace(t, l, k, dir, member, newHost)
	}
	// 1. refused, naming the rule, with no membership call made
	r, logs := replace("cp2", "cp4")
	if r.err == nil || !strings.Contains(r.err.Error(), "rule: removal keeps quorum") || !strings.Contains(r.err.Error(), "cp3") {
		t.Fatalf("replacing healthy cp2 while cp3 is down must be refused naming the rule and cp3: %v", r.err)
	}
	if calls := changes(logs); len(calls) != 0 {
		t.Fatalf("membership calls were made before the refusal: %v", calls)
	}
	if names := memberNames(t, cli); names != "cp1 cp2 cp3" {
		t.Fatalf("members after the refusal: %s", names)
	}
	if out, _ := l.Exec(ctx, "cp4", "ls /etc/kubernetes/manifests; ls /etc/kubernetes/pki/etcd 2>/dev/null; true"); strings.TrimSpace(out) != "" {
		t.Fatalf("the refused run touched the new host: %q", out)
	}

	// 2. the stopped member is replaced by cp4
	r, logs = replace("cp3", "cp4")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got, want := strings.Join(changes(logs), " "), "MemberRemove MemberAdd MemberPromote"; got != want {
		t.Fatalf("membership calls: %q, want %q", got, want)
	}
	if names := memberNames(t, cli); names != "cp1 cp2 cp4" {
		t.Fatalf("members after replacing cp3: %s", names)
	}
	// the new member has the data: a serializable read is served by cp4 alone
	cp4cli := etcdClient(t, l, "cp1", "https://"+cp4.IP+":2379")
	got, err := cp4cli.Get(ctx, "kubeplay-e2e/before-replace", clientv3.WithSerializable())
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "kept" {
		t.Fatalf("the key written before, read from cp4: %v %v", got, err)
	}
	// the etcd CA key went from cp1 to cp4 through the runner's memory
	// only: not in the logs, the events, or any file the run wrote
	caKey, err := l.Exec(ctx, "cp1", "sed -n 2p /etc/kubernetes/pki/etcd/ca.key")
	if err != nil || len(strings.TrimSpace(caKey)) < 40 {
		t.Fatalf("etcd CA key line: %q %v", caKey, err)
	}
	secretLine := strings.TrimSpace(caKey)
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), secretLine) || strings.Contains(fmt.Sprint(e.ContextMap()), "PRIVATE KEY") {
			t.Fatalf("key material in a log entry: %s", e.Message)
		}
	}
	for _, e := range r.rec.Events() {
		if s := fmt.Sprintf("%+v", e); strings.Contains(s, secretLine) || strings.Contains(s, "PRIVATE KEY") {
			t.Fatalf("key material in an event: %s", s)
		}
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), secretLine) {
				t.Errorf("key material written to %s", p)
			}
		}
		return nil
	})
	if got := nodeFile(t, l, "cp4", "/etc/kubernetes/pki/etcd/ca.key"); !strings.Contains(got, secretLine) {
		t.Fatal("the etcd CA key did not reach cp4")
	}
	if out, _ := l.Exec(ctx, "cp4", "stat -c %a /etc/kubernetes/pki/etcd/ca.key"); strings.TrimSpace(out) != "600" {
		t.Fatalf("the CA key on cp4 has mode %q", out)
	}
	// the replacement record on the new host is gone with the job done
	if f := nodeFile(t, l, "cp4", "/etc/kubernetes/kubeplay-etcd-replace.json"); f != "<absent>" {
		t.Fatalf("replacement record left on cp4: %s", f)
	}

	// 3. and back: healthy cp4 is replaced by cp3, whose old data goes aside
	r, logs = replace("cp4", "cp3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Join(changes(logs), " "); got != "MemberRemove MemberAdd MemberPromote" {
		t.Fatalf("membership calls: %q", got)
	}
	if names := memberNames(t, cli); names != "cp1 cp2 cp3" {
		t.Fatalf("members after replacing cp4: %s", names)
	}
	if out, _ := l.Exec(ctx, "cp3", "ls -d /var/lib/etcd.kubeplay-* | wc -l; ls /etc/kubernetes/manifests/etcd.yaml"); !strings.HasPrefix(out, "1\n") {
		t.Fatalf("cp3's old data dir moved aside and a new manifest written: %q", out)
	}
	if out, _ := l.Exec(ctx, "cp4", "test ! -e /etc/kubernetes/manifests/etcd.yaml && ls /etc/kubernetes/etcd.yaml.kubeplay-removed-* | wc -l"); strings.TrimSpace(out) != "1" {
		t.Fatalf("cp4's manifest must be moved out of the kubelet's directory: %q", out)
	}
	l.Exec(ctx, "cp3", "rm -rf /etc/kubernetes/etcd.yaml.e2e /var/lib/etcd.kubeplay-*")
	restored = true

	// 4. running it again changes nothing
	r, logs = replace("cp4", "cp3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if calls, out := changes(logs), harness.Outcomes(r.rec)["replace the member@cp1"]; len(calls) != 0 || out != events.OK {
		t.Fatalf("a second run must change nothing: calls %v, outcome %s", calls, out)
	}

	stopPoll()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("API polled %d times during the replacements", polls)
	if polls < 20 || len(pollErrs) > 0 {
		t.Fatalf("the API server must keep serving (%d polls): %v", polls, pollErrs)
	}
}

// etcdClient opens a client through a lab node, closed with the test.
func etcdClient(t *testing.T, l *lab.Lab, node, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := etcd.Open(context.Background(), harness.Connect(t, l, node), etcd.Options{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// memberNames lists the members, voting and started, by name ("?" marks a
// learner or an unstarted member).
func memberNames(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ml.Members {
		n := m.Name
		if m.IsLearner || n == "" {
			n += "?"
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// TestEtcdMemberReplaceFinishesInterruptedRuns builds, with real etcd
// calls, the two states a run stopped half way leaves, and checks that the
// next run finishes each with only the calls that remain:
//   - stopped between removal and addition: cp3 removed, the replacement
//     recorded on cp4; the next run adds and promotes cp4;
//   - stopped between addition and start: cp4 removed, cp3 added as a
//     learner with nothing written on cp3 (which still holds its old data);
//     the next run prepares cp3, starts and promotes it.
func TestEtcdMemberReplaceFinishesInterruptedRuns(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	cp4 := l.WithStandaloneNode(t, "cp4")
	cp3, _ := l.Node("cp3")
	restored := false
	t.Cleanup(func() {
		if !restored {
			l.MarkDirty()
		}
	})
	k, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	cli := etcdClient(t, l, "cp1", etcd.DefaultEndpoint)
	dir := t.TempDir()
	replace := func(member, newHost string) (result, []string) {
		r, logs := runReplace(t, l, k, dir, member, newHost)
		return r, changes(logs)
	}
	memberID := func(name string) uint64 {
		ml, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ml.Members {
			if m.Name == name {
				return m.ID
			}
		}
		t.Fatalf("no member %s", name)
		return 0
	}
	stop := func(node string) {
		if _, err := l.Exec(ctx, node, "mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd.yaml.e2e"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "etcd on "+node+" to stop", func() (bool, string) {
			out, _ := l.Exec(ctx, node, "ss -Hltn 'sport = :2379' | wc -l")
			return strings.TrimSpace(out) == "0", out
		})
	}
	// removals right after a change are refused for a few seconds
	removeMember := func(id uint64) {
		waitFor(t, time.Minute, "member removal", func() (bool, string) {
			_, err := cli.MemberRemove(ctx, id)
			return err == nil, fmt.Sprint(err)
		})
	}

	// stopped between removal and addition
	stop("cp3")
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp3ID := memberID("cp3")
	rec := fmt.Sprintf(`{"cluster_id": %q, "old_name": "cp3", "old_id": %q, "old_peer_url": "https://%s:2380", "new_peer_url": "https://%s:2380", "run_id": "earlier"}`,
		strconv.FormatUint(ml.Header.ClusterId, 16), strconv.FormatUint(cp3ID, 16), cp3.IP, cp4.IP)
	if _, err := l.Exec(ctx, "cp4", "mkdir -p /etc/kubernetes && cat > /etc/kubernetes/kubeplay-etcd-replace.json <<'EOF'\n"+rec+"\nEOF"); err != nil {
		t.Fatal(err)
	}
	removeMember(cp3ID)
	r, calls := replace("cp3", "cp4")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Join(calls, " "); got != "MemberAdd MemberPromote" {
		t.Fatalf("finishing after a removal: calls %q", got)
	}
	if names := memberNames(t, cli); names != "cp1 cp2 cp4" {
		t.Fatalf("members: %s", names)
	}

	// stopped between addition and start
	stop("cp4")
	removeMember(memberID("cp4"))
	waitFor(t, time.Minute, "learner addition", func() (bool, string) {
		_, err := cli.MemberAddAsLearner(ctx, []string{"https://" + cp3.IP + ":2380"})
		return err == nil, fmt.Sprint(err)
	})
	if names := memberNames(t, cli); names != "? cp1 cp2" {
		t.Fatalf("members with the learner added: %s", names)
	}
	r, calls = replace("cp4", "cp3")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Join(calls, " "); got != "MemberPromote" {
		t.Fatalf("finishing after an addition: calls %q", got)
	}
	if names := memberNames(t, cli); names != "cp1 cp2 cp3" {
		t.Fatalf("members: %s", names)
	}
	if out, _ := l.Exec(ctx, "cp3", "ls -d /var/lib/etcd.kubeplay-* | wc -l"); strings.TrimSpace(out) != "1" {
		t.Fatalf("cp3's old data dir must have been moved aside: %q", out)
	}
	l.Exec(ctx, "cp3", "rm -rf /etc/kubernetes/etcd.yaml.e2e /var/lib/etcd.kubeplay-*")
	restored = true
}

// runReplace runs the bundled etcd-replace-member, keeping every log entry
// (debug level: the test looks for key material in them too).
func runReplace(t *testing.T, l *lab.Lab, k kubernetes.Interface, dir, member, newHost string) (result, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	r := runPlaybook(t, l, bundled(t, "etcd-replace-member"), func(o *runner.Options) {
		o.Params = map[string]any{"member": member, "new_host": newHost, "dir": dir, "timeout": "3m"}
		o.Log = zap.New(core)
		o.Kube = k
	})
	return r, logs
}

// changes lists the cluster-changing etcd calls of a run, from the audit
// log, in order.
func changes(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.FilterMessage(etcd.AuditMessage).All() {
		out = append(out, e.ContextMap()["call"].(string))
	}
	return out
}
