package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

// kubeletPlaybook runs a bundled kubelet playbook on w1 and checks what
// every such run must leave: w1 drained, then schedulable and Ready.
func kubeletPlaybook(t *testing.T, l *lab.Lab, name string, p map[string]any) result {
	t.Helper()
	p["group"] = "w1"
	r := runPlaybook(t, l, bundled(t, name), func(o *runner.Options) { o.Params, o.Kube = p, kube(t, l) })
	if r.err != nil {
		return r
	}
	if o := harness.Outcomes(r.rec)["drain@w1"]; o != events.Changed && o != events.Skipped {
		t.Fatalf("%s: drain on w1: %s", name, o)
	}
	n, err := kube(t, l).CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
	if err != nil || n.Spec.Unschedulable {
		t.Fatalf("%s: w1 must be schedulable again: %v", name, err)
	}
	return r
}

// keepKubeletConfig puts node's kubelet config back as it is now when the
// test ends (restarting the kubelet), so that no setting a test merged in
// stays for the next test; it returns the config.
func keepKubeletConfig(t *testing.T, l *lab.Lab, node string) string {
	t.Helper()
	const path = "/var/lib/kubelet/config.yaml"
	before := nodeFile(t, l, node, path)
	t.Cleanup(func() {
		if nodeFile(t, l, node, path) == before {
			return
		}
		mustExec(t, l, node, "cat > "+path+" <<'EOF'\n"+before+"\nEOF\nsystemctl restart kubelet; rm -f "+path+".kubeplay-*")
	})
	return before
}

// TestBundledKubeletMemoryManager: a reservation that does not add up is
// refused on every node before any is drained; a correct one (the seed's
// arithmetic: kube-reserved + system-reserved + the 100Mi eviction
// threshold) switches w1 to Static through a drain, with the old
// checkpoint moved aside (the lab's kubelet, like the real one, refuses a
// checkpoint of another policy); a second run changes nothing; None goes
// back.
func TestBundledKubeletMemoryManager(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	before := keepKubeletConfig(t, l, "w1")
	t.Cleanup(func() {
		kubeletPlaybook(t, l, "kubelet-memory-manager", map[string]any{"policy": "None"})
		l.Exec(ctx, "w1", "rm -f /var/lib/kubelet/memory_manager_state.kubeplay-*")
	})
	bad := map[string]any{"policy": "Static", "kube_reserved": map[string]any{"memory": "512Mi"}, "system_reserved": map[string]any{"memory": "512Mi"},
		"reserved_memory": []any{map[string]any{"numaNode": 0, "limits": map[string]any{"memory": "1Gi"}}}}
	r := kubeletPlaybook(t, l, "kubelet-memory-manager", bad)
	if r.err == nil || !strings.Contains(r.err.Error(), "reservedMemory memory adds up to 1Gi") || !strings.Contains(r.err.Error(), "1124Mi") {
		t.Fatalf("a reservation short of the eviction threshold must be refused: %v", r.err)
	}
	if o := harness.Outcomes(r.rec)["drain@w1"]; o != "" {
		t.Fatalf("nothing may be drained before every node accepts the config: drain %s", o)
	}
	if got := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); got != before {
		t.Fatal("the refused run changed the kubelet config")
	}
	good := map[string]any{"policy": "Static", "kube_reserved": map[string]any{"memory": "512Mi"}, "system_reserved": map[string]any{"memory": "512Mi"},
		"reserved_memory": []any{map[string]any{"numaNode": 0, "limits": map[string]any{"memory": "1124Mi"}}}}
	if r = kubeletPlaybook(t, l, "kubelet-memory-manager", good); r.err != nil {
		t.Fatal(r.err)
	}
	cfg := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml")
	if !strings.Contains(cfg, "memoryManagerPolicy: Static") || !strings.Contains(cfg, "memory: 1124Mi") {
		t.Fatalf("config:\n%s", cfg)
	}
	if st := nodeFile(t, l, "w1", "/var/lib/kubelet/memory_manager_state"); !strings.Contains(st, `"policyName":"Static"`) {
		t.Fatalf("the kubelet's checkpoint: %s", st)
	}
	if old := nodeFile(t, l, "w1", "/var/lib/kubelet/memory_manager_state.kubeplay-"+t.Name()); !strings.Contains(old, `"policyName":"None"`) {
		t.Fatalf("the old checkpoint, moved aside: %s", old)
	}
	if r = kubeletPlaybook(t, l, "kubelet-memory-manager", good); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	if r = kubeletPlaybook(t, l, "kubelet-memory-manager", map[string]any{"policy": "None"}); r.err != nil {
		t.Fatal(r.err)
	}
	if st := nodeFile(t, l, "w1", "/var/lib/kubelet/memory_manager_state"); !strings.Contains(st, `"policyName":"None"`) {
		t.Fatalf("the kubelet's checkpoint after None: %s", st)
	}
}

// TestBundledKubeletTopologyManager switches w1's topology manager to
// single-numa-node with pod scope through a drain, and back; a second run
// changes nothing.
func TestBundledKubeletTopologyManager(t *testing.T) {
	l := lab.Start(t)
	keepKubeletConfig(t, l, "w1")
	p := map[string]any{"policy": "single-numa-node", "scope": "pod"}
	if r := kubeletPlaybook(t, l, "kubelet-topology-manager", p); r.err != nil {
		t.Fatal(r.err)
	}
	if cfg := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); !strings.Contains(cfg, "topologyManagerPolicy: single-numa-node") || !strings.Contains(cfg, "topologyManagerScope: pod") {
		t.Fatalf("config:\n%s", cfg)
	}
	if r := kubeletPlaybook(t, l, "kubelet-topology-manager", p); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	if r := kubeletPlaybook(t, l, "kubelet-topology-manager", map[string]any{"policy": "none"}); r.err != nil {
		t.Fatal(r.err)
	}
	if cfg := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); !strings.Contains(cfg, "topologyManagerPolicy: none") {
		t.Fatalf("config:\n%s", cfg)
	}
}

// TestBundledCgroupDriverSystemd starts from a cluster on cgroupfs (the
// kubelet-config ConfigMap, and w1's kubelet and containerd, which the
// lab's kubelet requires to agree) and moves it to systemd: the ConfigMap
// says systemd, w1's containerd has SystemdCgroup = true in the runc
// options table and its kubelet cgroupDriver: systemd, the runtime runs
// with it, and w1 went through a drain and is Ready again. A second run
// changes nothing.
func TestBundledCgroupDriverSystemd(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	setCM := func(driver string) {
		t.Helper()
		cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["kubelet"] = strings.Replace(cm.Data["kubelet"], "cgroupDriver: systemd", "cgroupDriver: "+driver, 1)
		if _, err := k.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const toml = "/etc/containerd/config.toml"
	saved := nodeFile(t, l, "w1", toml)
	t.Cleanup(func() {
		setCM("systemd")
		l.Exec(ctx, "w1", "rm -f /etc/containerd/config.toml.kubeplay-* /var/lib/kubelet/config.yaml.kubeplay-*")
	})
	// the cluster on cgroupfs: containerd without the option for runc (its
	// default), the kubelet on cgroupfs. Another runtime's options carry
	// the key too: only runc's may change (a line edit of the first
	// SystemdCgroup line would set kata's and leave runc on cgroupfs)
	setCM("cgroupfs")
	mustExec(t, l, "w1", `systemctl stop kubelet && systemctl stop containerd &&
printf 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]\n  SystemdCgroup = false # kata stays\n' > `+toml+` &&
sed -i 's/^cgroupDriver: .*/cgroupDriver: cgroupfs/' /var/lib/kubelet/config.yaml &&
systemctl start containerd && systemctl start kubelet`)
	waitFor(t, 60*time.Second, "w1 Ready on cgroupfs", func() (bool, string) {
		n, err := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" {
				return c.Status == "True", string(c.Status)
			}
		}
		return false, "no Ready condition"
	})
	if got := mustExec(t, l, "w1", "cat /run/lab/runtime-cgroup-driver"); got != "cgroupfs" {
		t.Fatalf("containerd runs with %s", got)
	}
	r := kubeletPlaybook(t, l, "cgroup-driver-systemd", map[string]any{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	cm, _ := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if !strings.Contains(cm.Data["kubelet"], "cgroupDriver: systemd") {
		t.Fatalf("kubelet-config:\n%s", cm.Data["kubelet"])
	}
	if cfg := nodeFile(t, l, "w1", toml); !strings.Contains(cfg, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = true") ||
		!strings.Contains(cfg, "runtimes.kata.options]\n  SystemdCgroup = false # kata stays") {
		t.Fatalf("%s:\n%s", toml, cfg)
	}
	if cfg := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); !strings.Contains(cfg, "cgroupDriver: systemd") {
		t.Fatalf("kubelet config:\n%s", cfg)
	}
	if got := mustExec(t, l, "w1", "cat /run/lab/runtime-cgroup-driver"); got != "systemd" {
		t.Fatalf("containerd must run with systemd, runs with %s", got)
	}
	if r = kubeletPlaybook(t, l, "cgroup-driver-systemd", map[string]any{}); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	// the lab's own file, as provisioned, is already on systemd: put it back
	mustExec(t, l, "w1", "cat > "+toml+" <<'EOF'\n"+saved+"\nEOF")
}

// TestBundledKubeletNodeAllocatable: reservations that would leave pods
// less than half of w1's memory are refused before anything changes; the
// seed's kind of reservation is applied, and the Allocatable w1's Node
// reports (computed by the lab's kubelet from its config) is capacity -
// reserved - the eviction threshold; a second run changes nothing.
func TestBundledKubeletNodeAllocatable(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	before := keepKubeletConfig(t, l, "w1")
	run := func(p map[string]any) result {
		p["group"] = "w1"
		return runPlaybook(t, l, bundled(t, "kubelet-node-allocatable"), func(o *runner.Options) { apiClients(t, l)(o); o.Params = p })
	}
	r := run(map[string]any{"kube_reserved": map[string]any{"memory": "20Gi"}})
	if r.err == nil || !strings.Contains(r.err.Error(), "more than max_reserved_percent") {
		t.Fatalf("reserving most of the memory must be refused: %v", r.err)
	}
	if got := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); got != before {
		t.Fatal("the refused run changed the kubelet config")
	}
	p := map[string]any{"kube_reserved": map[string]any{"cpu": "500m", "memory": "1Gi"}, "system_reserved": map[string]any{"memory": "512Mi"},
		"eviction_hard": map[string]any{"memory.available": "200Mi", "nodefs.available": "10%"}}
	if r = run(p); r.err != nil {
		t.Fatal(r.err)
	}
	n, err := kube(t, l).CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// capacity 8 CPU, 32Gi, 100Gi
	for name, want := range map[corev1.ResourceName]string{"cpu": "7500m", "memory": "31032Mi", "ephemeral-storage": "90Gi"} {
		if got := n.Status.Allocatable[name]; got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("w1 allocatable %s: %s, want %s", name, got.String(), want)
		}
	}
	if cfg := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); !strings.Contains(cfg, "memory.available: 200Mi") {
		t.Fatalf("config:\n%s", cfg)
	}
	if r = run(p); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
}
