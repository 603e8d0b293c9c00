// Package upgrade runs the bundled playbooks that change the shared lab for
// good (kubeadm-cert-renew, then kubeadm-upgrade) and checks their effects
// on every node and in the API. They run alone, after the other packages:
// set KUBEPLAY_EXCLUSIVE_TESTS=1 (make test does). The next lab.Start
// rebuilds the upgraded lab at its start version.
package upgrade

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/etcdsnap"
	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

func upgrade(t *testing.T, l *lab.Lab, kube kubernetes.Interface, params map[string]any) (*events.Recorder, error) {
	t.Helper()
	src, err := playbooks.Source("kubeadm-upgrade")
	if err != nil {
		t.Fatal(err)
	}
	r := harness.Run(t, l, "kubeadm-upgrade.yaml", src, func(o *runner.Options) { o.Kube, o.Params = kube, params })
	return r.Rec, r.Err
}

// sampler watches the cluster while a run goes on: the fewest ready
// replicas of the guarded workload, and the most nodes cordoned at once.
type sampler struct {
	mu          sync.Mutex
	minReady    int
	maxCordoned int
	cordoned    map[string]bool
	stop        chan struct{}
	done        chan struct{}
}

func watch(kube kubernetes.Interface, ns string) *sampler {
	s := &sampler{minReady: 1 << 30, cordoned: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		ctx := context.Background()
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ready, _ := lab.ReadyPods(ctx, kube, ns)
			nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if ready < 0 || err != nil {
				continue // an API server restarting under kubeadm
			}
			cordoned := 0
			s.mu.Lock()
			for _, n := range nodes.Items {
				if n.Spec.Unschedulable {
					cordoned++
					s.cordoned[n.Name] = true
				}
			}
			s.minReady = min(s.minReady, ready)
			s.maxCordoned = max(s.maxCordoned, cordoned)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) end() (minReady, maxCordoned int, cordoned map[string]bool) {
	close(s.stop)
	<-s.done
	return s.minReady, s.maxCordoned, s.cordoned
}

func TestBundledKubeadmUpgrade(t *testing.T) {
	exclusive(t)
	l := lab.StartExclusive(t)
	v, err := lab.LoadVersions(l.ScriptsDir())
	if err != nil {
		t.Fatal(err)
	}
	from, to := v.Kube[0], v.Kube[1]
	kube, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snapDir := t.TempDir()
	params := func(version string) map[string]any {
		return map[string]any{"version": version, "snapshot_dir": snapDir, "drain_timeout": "3m"}
	}
	repo := func(node string) string {
		out, _ := l.Exec(ctx, node, "cat /etc/apt/sources.list.d/kubernetes.list")
		return out
	}

	// refusals come before any change, and name their rule
	before := repo("cp1")
	for version, rule := range map[string]string{
		minorsAbove(from, -1): "goes down",
		minorsAbove(to, 1):    "skips a minor",
	} {
		_, err := upgrade(t, l, kube, params(version))
		if err == nil || !strings.Contains(err.Error(), rule) {
			t.Fatalf("upgrade to %s: want a refusal naming %q, got %v", version, rule, err)
		}
	}
	if repo("cp1") != before {
		t.Fatal("a refused upgrade changed the package repository")
	}
	if snaps, _ := filepath.Glob(filepath.Join(snapDir, "*.db")); len(snaps) != 0 {
		t.Fatalf("a refused upgrade reached the etcd snapshot: %v", snaps)
	}

	lab.Workload(t, kube, "upgrade-e2e", 4, 3)
	s := watch(kube, "upgrade-e2e")
	start := time.Now()
	rec, err := upgrade(t, l, kube, params(to))
	minReady, maxCordoned, cordoned := s.end()
	t.Logf("upgrade %s -> %s took %s; fewest ready replicas %d, most nodes cordoned at once %d", from, to, time.Since(start).Round(time.Second), minReady, maxCordoned)
	logSlowest(t, rec, 10)
	if err != nil {
		t.Fatal(err)
	}

	// every node: Ready, schedulable, kubelet at the target
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Status.NodeInfo.KubeletVersion != "v"+to || n.Spec.Unschedulable {
			t.Errorf("node %s: kubelet %s, unschedulable %v", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable)
		}
		if !cordoned[n.Name] {
			t.Errorf("node %s was never drained", n.Name)
		}
	}
	if maxCordoned != 1 {
		t.Errorf("nodes are drained one at a time; saw %d cordoned at once", maxCordoned)
	}
	if minReady < 3 {
		t.Errorf("the PDB allows one disruption; ready replicas fell to %d", minReady)
	}
	// every node: packages at the target and held, repository on the new minor
	minor := to[:strings.LastIndex(to, ".")]
	for _, n := range l.ClusterNodes() {
		out, _ := l.Exec(ctx, n.Name, "dpkg-query -W -f='${Package}=${Version} ' kubeadm kubelet kubectl; echo; apt-mark showhold | sort | tr '\\n' ' '")
		want := "kubeadm=" + lab.DebVersion(to) + " kubectl=" + lab.DebVersion(to) + " kubelet=" + lab.DebVersion(to)
		if !strings.Contains(out, want) || !strings.Contains(out, "kubeadm kubectl kubelet") {
			t.Errorf("%s packages: %s", n.Name, out)
		}
		if !strings.Contains(repo(n.Name), "/v"+minor+"/deb/") {
			t.Errorf("%s repository: %s", n.Name, repo(n.Name))
		}
		if n.Role != lab.RoleControlPlane {
			continue
		}
		// this node's own API server, not the load-balanced endpoint
		if got := apiServerVersion(t, l, n.IP); got != "v"+to {
			t.Errorf("kube-apiserver on %s answers /version %s", n.Name, got)
		}
		// control planes: manifests at the target, etcd at kubeadm's pin
		out, _ = l.Exec(ctx, n.Name, "grep -h 'image:' /etc/kubernetes/manifests/*.yaml | sort")
		if strings.Count(out, ":v"+to) != 3 || !strings.Contains(out, "etcd:"+v.Etcd[1]) {
			t.Errorf("%s manifests: %s", n.Name, out)
		}
	}
	// the pre-upgrade snapshot verifies
	snaps, _ := filepath.Glob(filepath.Join(snapDir, "pre-upgrade-*.db"))
	if len(snaps) != 1 {
		t.Fatalf("want one pre-upgrade snapshot, got %v", snaps)
	}
	if st, err := etcdsnap.Verify(snaps[0]); err != nil || st.Revision == 0 {
		t.Fatalf("snapshot %s: %+v %v", snaps[0], st, err)
	}

	// a second run converges without touching a node: nothing drained,
	// kubeadm left alone
	s = watch(kube, "upgrade-e2e")
	start = time.Now()
	rec, err = upgrade(t, l, kube, params(to))
	_, maxCordoned, _ = s.end()
	t.Logf("second run took %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if maxCordoned != 0 {
		t.Errorf("the second run drained a node")
	}
	oc := harness.Outcomes(rec)
	for _, n := range l.ClusterNodes() {
		for _, step := range []string{"drain", "restart kubelet"} {
			if oc[step+"@"+n.Name] != events.Skipped {
				t.Errorf("second run: %s on %s was %q, want skipped", step, n.Name, oc[step+"@"+n.Name])
			}
		}
	}
	for _, k := range []string{"kubeadm upgrade apply@cp1", "kubeadm upgrade node@cp2", "kubeadm upgrade node@cp3"} {
		if oc[k] != events.OK {
			t.Errorf("second run: %s was %q, want ok (unchanged)", k, oc[k])
		}
	}
}

// apiServerVersion asks the kube-apiserver at ip for /version.
func apiServerVersion(t *testing.T, l *lab.Lab, ip string) string {
	rc, err := clientcmd.BuildConfigFromFlags("https://"+ip+":6443", l.KubeconfigFile())
	if err != nil {
		t.Fatal(err)
	}
	v, err := newDiscovery(t, rc).ServerVersion()
	if err != nil {
		return err.Error()
	}
	return v.GitVersion
}

// logSlowest logs the n longest step runs, for the record.
func logSlowest(t *testing.T, rec *events.Recorder, n int) {
	var ends []events.Event
	for _, e := range rec.Events() {
		if e.Type == events.HostEnd {
			ends = append(ends, e)
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Duration > ends[j].Duration })
	for _, e := range ends[:min(n, len(ends))] {
		t.Logf("  %-40s %-4s %s", e.Step, e.Host, e.Duration.Round(100*time.Millisecond))
	}
}

// exclusive skips tests that change the shared lab for good unless asked:
// make test runs this package alone, after the others.
func exclusive(t *testing.T) {
	if os.Getenv("KUBEPLAY_EXCLUSIVE_TESTS") != "1" {
		t.Skip("changes the shared lab (versions, certificates); make test runs it alone with KUBEPLAY_EXCLUSIVE_TESTS=1")
	}
}

// newDiscovery is a discovery client for rc.
func newDiscovery(t *testing.T, rc *rest.Config) *discovery.DiscoveryClient {
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

// minorsAbove returns the version n minors above v: "1.37.2", 2 → "1.39.0".
func minorsAbove(v string, n int) string {
	parts := strings.Split(v, ".")
	minor, _ := strconv.Atoi(parts[1])
	return fmt.Sprintf("%s.%d.0", parts[0], minor+n)
}
