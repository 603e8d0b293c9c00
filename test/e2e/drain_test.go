package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

func kube(t *testing.T, l *lab.Lab) kubernetes.Interface {
	t.Helper()
	c, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// workload creates a namespace with a Deployment on the workers and a PDB.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
	}
	t.Fatalf("%s: not after %s (%s)", what, d, last)
}

const drainPlaybook = `apiVersion: kubeplay/v1
kind: Playbook
name: maintenance
params:
  timeout: {type: duration, default: 3m}
plays:
  - hosts: w1
    steps:
      - drain: {timeout: '{{ params.timeout }}', retry_delay: 1s}
      - uncordon: {}
`

func TestDrainRespectsPDB(t *testing.T) {
	l := lab.Start(t)
	c := kube(t, l)
	ctx := context.Background()
	lab.Workload(t, c, "drain-ok", 4, 3)

	// availability is polled while the drain runs
	stop := make(chan struct{})
	minReady := make(chan int, 1)
	go func() {
		low := 99
		for {
			select {
			case <-stop:
				minReady <- low
				return
			case <-time.After(200 * time.Millisecond):
			}
			if ready, _ := lab.ReadyPods(ctx, c, "drain-ok"); ready >= 0 {
				low = min(low, ready)
			}
		}
	}()
	r := runPlaybook(t, l, drainPlaybook, func(o *runner.Options) { o.Kube = c })
	close(stop)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if low := <-minReady; low < 3 {
		t.Fatalf("the PDB (minAvailable 3) was violated: %d ready at the lowest", low)
	}
	pods, _ := c.CoreV1().Pods("drain-ok").List(ctx, metav1.ListOptions{})
	for _, p := range pods.Items {
		if p.Spec.NodeName == "w1" && p.DeletionTimestamp == nil {
			t.Fatalf("pod %s still on w1", p.Name)
		}
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Fatal("w1 should be schedulable after uncordon")
	}
}

func TestDrainBlockedByPDBTimesOutAndUncordons(t *testing.T) {
	l := lab.Start(t)
	c := kube(t, l)
	ctx := context.Background()
	lab.Workload(t, c, "drain-blocked", 2, 2)
	// --check asks the API server (dry-run evictions) and names the block
	r := runPlaybook(t, l, drainPlaybook, func(o *runner.Options) {
		o.Kube, o.Check = c, true
		o.Params = map[string]any{"timeout": "10s"}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	blockedNamed := false
	for _, e := range r.rec.Events() {
		blockedNamed = blockedNamed || (e.Module == "drain" && strings.Contains(e.Msg, "blocked by a PodDisruptionBudget right now: drain-blocked/drain-blocked-"))
	}
	if !blockedNamed {
		t.Fatal("--check did not name the pods a PDB blocks")
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Fatal("--check cordoned w1")
	}
	r = runPlaybook(t, l, drainPlaybook, func(o *runner.Options) {
		o.Kube = c
		o.Params = map[string]any{"timeout": "10s"}
	})
	if r.err == nil || !strings.Contains(r.err.Error(), "drain did not finish") ||
		!strings.Contains(r.err.Error(), "drain-blocked/drain-blocked (disruptionsAllowed=0)") {
		t.Fatalf("want a timeout naming the pod and its PDB: %v", r.err)
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); n.Spec.Unschedulable {
		t.Fatal("a failed drain must return w1 to its prior (schedulable) state")
	}
}

func TestUncordonLeavesForeignCordon(t *testing.T) {
	l := lab.Start(t)
	c := kube(t, l)
	ctx := context.Background()
	// someone cordoned w2 before kubeplay ran
	if _, err := c.CoreV1().Nodes().Patch(ctx, "w2", "application/merge-patch+json", []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	defer c.CoreV1().Nodes().Patch(ctx, "w2", "application/merge-patch+json", []byte(`{"spec":{"unschedulable":null}}`), metav1.PatchOptions{})
	r := runPlaybook(t, l, strings.Replace(drainPlaybook, "hosts: w1", "hosts: w2", 1), func(o *runner.Options) { o.Kube = c })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n, _ := c.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{}); !n.Spec.Unschedulable {
		t.Fatal("a node cordoned before the run must stay cordoned after drain/uncordon")
	}
}

func TestBundledNodeMaintenance(t *testing.T) {
	l := lab.Start(t)
	c := kube(t, l)
	ctx := context.Background()
	lab.Workload(t, c, "maint", 2, 1)
	boots := map[string]string{}
	for _, n := range []string{"w1", "w2"} {
		l.Exec(ctx, n, "rm -f /etc/kubeplay-maintained")
		boots[n] = nodeFile(t, l, n, "/proc/sys/kernel/random/boot_id")
	}
	src, err := playbooks.Source("node-maintenance")
	if err != nil {
		t.Fatal(err)
	}
	r := runPlaybook(t, l, string(src), func(o *runner.Options) {
		o.Kube = c
		o.Params = map[string]any{"command": "hostname > /etc/kubeplay-maintained", "serial": "1", "reboot": true}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	batches := r.rec.Filter("batch.start")
	if len(batches) != 2 {
		t.Fatalf("serial 1 over two workers: %d batches", len(batches))
	}
	for _, n := range []string{"w1", "w2"} {
		if out, _ := l.Exec(ctx, n, "cat /etc/kubeplay-maintained"); strings.TrimSpace(out) != n {
			t.Fatalf("%s: maintenance command did not run: %q", n, out)
		}
		if node, _ := c.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{}); node.Spec.Unschedulable {
			t.Fatalf("%s left cordoned", n)
		}
		// rebooted: a new boot, and its units started again
		if b := nodeFile(t, l, n, "/proc/sys/kernel/random/boot_id"); b == boots[n] || b == "<absent>" {
			t.Fatalf("%s: the boot id must change with the reboot (%s)", n, b)
		}
		if out, _ := l.Exec(ctx, n, "systemctl is-active containerd kubelet | tr '\\n' ' '"); strings.TrimSpace(out) != "active active" {
			t.Fatalf("%s: units after the reboot: %q", n, out)
		}
	}
}
