package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/etcdsnap"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/etcd"
)

// etcd is reached through cp1's sshd only: its client port is dialled from
// the node, and the other members' ports from there too.
func TestEtcdHealthAndSnapshotThroughSSH(t *testing.T) {
	l := lab.Start(t)
	dir := t.TempDir()
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: etcd
params:
  dir: {type: string, required: true}
plays:
  - hosts: control_plane[0]
    steps:
      - etcd-health: {}
        register: health
      - assert:
          that:
            - 'len(health.data.members) == 3 && health.data.voters == 3 && health.data.quorum == 2'
            - 'health.data.leader != "" && health.data.quorum_read'
            - 'all(health.data.members, {.reachable && .version != "" && .db_size > 0})'
      - etcd-snapshot: {dir: '{{ params.dir }}', keep: 2}
        register: snap
      - etcd-snapshot: {dir: '{{ params.dir }}', keep: 2}
      - etcd-snapshot: {dir: '{{ params.dir }}', keep: 2}
        register: last
      - assert:
          that:
            - 'snap.data.revision > 0 && snap.data.keys > 0 && snap.data.integrity == "ok"'
            - 'len(last.data.removed) == 1 && last.data.removed[0] == snap.data.path'
`
	r := runPlaybook(t, l, src, func(o *runner.Options) { o.Params = map[string]any{"dir": dir} })
	if r.err != nil {
		t.Fatal(r.err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "etcd-snapshot-*.db"))
	if len(snaps) != 2 {
		t.Fatalf("retention: want 2 snapshots, got %v", snaps)
	}
	// the file on disk verifies independently; corrupting it is detected
	st, err := etcdsnap.Verify(snaps[0])
	if err != nil || st.Revision == 0 || st.Integrity != "ok" {
		t.Fatalf("verify %s: %+v %v", snaps[0], st, err)
	}
	b, _ := os.ReadFile(snaps[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(snaps[0], b, 0o600)
	if _, err := etcdsnap.Verify(snaps[0]); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("a flipped byte must fail verification: %v", err)
	}
}

// With one member stopped the cluster keeps quorum, but etcd-health names the
// unreachable member and fails, unless only quorum is required.
func TestEtcdHealthNamesAnUnreachableMember(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	// the kubelet keeps the static pod running; move the manifest away
	if _, err := l.Exec(ctx, "cp3", "mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/etcd.yaml.e2e"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Exec(ctx, "cp3", "mv /etc/kubernetes/etcd.yaml.e2e /etc/kubernetes/manifests/etcd.yaml")
		r := runPlaybook(t, l, etcdWait, nil)
		if r.err != nil {
			t.Errorf("etcd did not come back on cp3: %v", r.err)
		}
	})
	waitFor(t, time.Minute, "etcd on cp3 to stop", func() (bool, string) {
		out, _ := l.Exec(ctx, "cp3", "ss -Hltn 'sport = :2379' | wc -l")
		return strings.TrimSpace(out) == "0", out
	})
	r := runPlaybook(t, l, `apiVersion: kubeplay/v1
kind: Playbook
name: etcd-down
plays:
  - hosts: cp1
    steps:
      - etcd-health: {member_timeout: 2s}
`, nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "unreachable: cp3") {
		t.Fatalf("want a failure naming cp3: %v", r.err)
	}
	r = runPlaybook(t, l, `apiVersion: kubeplay/v1
kind: Playbook
name: etcd-quorum
plays:
  - hosts: cp1
    steps:
      - etcd-health: {member_timeout: 2s, require_all: false}
        register: h
        retries: 10
        delay: 1s
      - assert: {that: ['h.data.reachable_voters == 2']}
`, nil)
	if r.err != nil {
		t.Fatalf("quorum holds with 2 of 3: %v", r.err)
	}
}

const etcdWait = `apiVersion: kubeplay/v1
kind: Playbook
name: etcd-wait
plays:
  - hosts: cp1
    steps:
      - etcd-health: {member_timeout: 2s}
        retries: 30
        delay: 2s
`

// TestEtcdDefragLeaderLast defragments the lab's three members: followers
// first, the leader last, each reporting its size, with the API served and
// the cluster healthy afterwards.
func TestEtcdDefragLeaderLast(t *testing.T) {
	l := lab.Start(t)
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: defrag
plays:
  - hosts: control_plane[0]
    steps:
      - etcd-health: {}
        register: before
      - etcd-defrag: {}
        register: defrag
      - assert:
          that:
            - 'len(defrag.data.members) == 3'
            - 'defrag.data.members[2].leader && defrag.data.members[2].name == before.data.leader'
            - '!defrag.data.members[0].leader && !defrag.data.members[1].leader'
            - 'all(defrag.data.members, {.db_size_after > 0})'
      - etcd-health: {}
`
	r := runPlaybook(t, l, src, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if _, err := kube(t, l).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatalf("the API after defragmentation: %v", err)
	}
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEtcdSnapshotRestoresIntoAScratchMember saves a snapshot of the lab's
// etcd (through cp1's SSH connection), restores it with etcd's restore code
// into a new data dir with a new cluster token, starts a scratch etcd on
// loopback from it, and reads back a key written before the snapshot.
func TestEtcdSnapshotRestoresIntoAScratchMember(t *testing.T) {
	l := lab.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := etcd.Open(ctx, harness.Connect(t, l, "cp1"), etcd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	key, val := "/kubeplay-e2e/restore", "written-"+time.Now().Format(time.RFC3339Nano)
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatal(err)
	}
	defer cli.Delete(context.Background(), key)
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	if _, err := etcdsnap.Save(ctx, cli, snap); err != nil {
		t.Fatal(err)
	}
	peer, client := freePort(t), freePort(t)
	peerURL, clientURL := fmt.Sprintf("http://127.0.0.1:%d", peer), fmt.Sprintf("http://127.0.0.1:%d", client)
	data := filepath.Join(dir, "scratch.etcd")
	if err := etcdsnap.Restore(snap, etcdsnap.RestoreOptions{Name: "scratch", DataDir: data, PeerURLs: []string{peerURL}, Token: "kubeplay-restore-test", RevisionBump: 1000}, nil); err != nil {
		t.Fatal(err)
	}
	// restoring over an existing data dir is refused
	if err := etcdsnap.Restore(snap, etcdsnap.RestoreOptions{Name: "scratch", DataDir: data, PeerURLs: []string{peerURL}, Token: "x"}, nil); err == nil {
		t.Fatal("a restore over an existing data dir was allowed")
	}
	bin, err := l.EtcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--name", "scratch", "--data-dir", data,
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	scratch, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer scratch.Close()
	var got string
	waitFor(t, 30*time.Second, "the scratch etcd serves the key", func() (bool, string) {
		gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
		defer gcancel()
		r, err := scratch.Get(gctx, key)
		if err != nil {
			return false, err.Error()
		}
		if len(r.Kvs) == 1 {
			got = string(r.Kvs[0].Value)
		}
		return got != "", "no key"
	})
	if got != val {
		t.Fatalf("restored %q, want %q\n%s", got, val, logs.String())
	}
	// the cluster's own data came along
	r, err := scratch.Get(ctx, "/registry/namespaces/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count < 4 {
		t.Fatalf("namespaces in the restored data: %v %v", r, err)
	}
}
