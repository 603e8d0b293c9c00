package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestBundledKubeletCPUManagerPolicy switches w1 to the static policy and
// back: each time the node was drained and is schedulable and Ready again,
// its config has the policy, its kubelet started with a checkpoint of the
// new policy (the old one moved aside, or the kubelet would have refused to
// start), and a second run changes nothing.
func TestBundledKubeletCPUManagerPolicy(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	run := func(p map[string]any) result {
		return runPlaybook(t, l, bundled(t, "kubelet-cpu-manager-policy"), func(o *runner.Options) {
			p["group"] = "w1"
			o.Params, o.Kube = p, k
		})
	}
	keepKubeletConfig(t, l, "w1")
	t.Cleanup(func() {
		run(map[string]any{"policy": "none"})
		l.Exec(ctx, "w1", "rm -f /var/lib/kubelet/cpu_manager_state.kubeplay-* /var/lib/kubelet/config.yaml.kubeplay-*")
	})
	check := func(policy string) {
		t.Helper()
		if cfg := nodeFile(t, l, "w1", "/var/lib/kubelet/config.yaml"); !strings.Contains(cfg, "cpuManagerPolicy: "+policy) {
			t.Fatalf("config:\n%s", cfg)
		}
		if st := nodeFile(t, l, "w1", "/var/lib/kubelet/cpu_manager_state"); !strings.Contains(st, `"policyName":"`+policy+`"`) {
			t.Fatalf("the kubelet's checkpoint: %s", st)
		}
		n, err := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
		if err != nil || n.Spec.Unschedulable {
			t.Fatalf("w1 must be schedulable again: %v", err)
		}
	}
	// refused by the preflight play, on the node's own merged config, as
	// the kubelet would refuse it: before any node is drained
	if r := run(map[string]any{"policy": "static"}); r.err == nil || !strings.Contains(r.err.Error(), "cpuManagerPolicy static needs reservedSystemCPUs") {
		t.Fatalf("static without a reservation must be refused: %v", r.err)
	} else if r.recap.Totals().Changed != 0 {
		t.Fatalf("the refused run changed %d things", r.recap.Totals().Changed)
	}
	r := run(map[string]any{"policy": "static", "reserved_cpus": "0"})
	if r.err != nil {
		t.Fatal(r.err)
	}
	check("static")
	if out := nodeFile(t, l, "w1", "/var/lib/kubelet/cpu_manager_state.kubeplay-"+t.Name()); !strings.Contains(out, `"policyName":"none"`) {
		t.Fatalf("the old checkpoint, moved aside: %s", out)
	}
	if r = run(map[string]any{"policy": "static", "reserved_cpus": "0"}); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	if r = run(map[string]any{"policy": "none"}); r.err != nil {
		t.Fatal(r.err)
	}
	check("none")
}
