package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// cancelOn forwards events and interrupts the run when one matches.
type cancelOn struct {
	mu     sync.Mutex
	rec    *events.Recorder
	match  func(events.Event) bool
	cancel context.CancelCauseFunc
}

func (c *cancelOn) Emit(e events.Event) {
	c.rec.Emit(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.match != nil && c.match(e) {
		c.match = nil
		c.cancel(failure.ErrInterrupted)
	}
}

// Ctrl-C while a node is drained and its maintenance command runs: the
// command is cut off, the node's rollback stack runs (newest first), and no
// node is left cordoned by kubeplay.
func TestInterruptRollsBackTheDrainedNode(t *testing.T) {
	l := lab.Start(t)
	c := kube(t, l)
	lab.Workload(t, c, "interrupt", 2, 1)
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: interrupted-maintenance
plays:
  - hosts: workers
    serial: 1
    steps:
      - name: mark
        shell: {cmd: 'touch /tmp/kubeplay-interrupt'}
        rollback:
          - shell: {cmd: 'rm -f /tmp/kubeplay-interrupt'}
      - name: drain
        drain: {timeout: 2m, retry_delay: 1s}
      - name: maintenance
        shell: {cmd: 'sleep 60'}
      - uncordon: {}
`
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	rec := &events.Recorder{}
	sink := &cancelOn{rec: rec, cancel: cancel, match: func(e events.Event) bool {
		return e.Type == events.HostStart && e.Step == "maintenance"
	}}
	start := time.Now()
	r := runPlaybookCtx(ctx, t, l, src, func(o *runner.Options) { o.Kube, o.Sink = c, sink })
	if !errors.Is(r.err, failure.ErrInterrupted) {
		t.Fatalf("want an interrupted run, got %v", r.err)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Fatalf("the interrupt did not cut the 60s command short (%s)", d)
	}
	// the first worker: rolled back, newest first: the drain, then the mark
	var undone []string
	for _, e := range rec.Events() {
		if e.Type == events.RollbackEnd && e.Host == "w1" {
			undone = append(undone, e.Step)
		}
	}
	if strings.Join(undone, ",") != "drain,mark" {
		t.Fatalf("rollbacks on w1, in order: %v (want drain, then mark)", undone)
	}
	for _, n := range []string{"w1", "w2"} {
		node, err := c.CoreV1().Nodes().Get(context.Background(), n, metav1.GetOptions{})
		if err != nil || node.Spec.Unschedulable {
			t.Errorf("%s left cordoned after the interrupt: %v", n, err)
		}
	}
	if got := nodeFile(t, l, "w1", "/tmp/kubeplay-interrupt"); got != "<absent>" {
		t.Errorf("the mark's rollback did not run: %q", got)
	}
	// the second worker was never touched
	for _, e := range rec.Events() {
		if e.Host == "w2" && e.Type == events.HostStart {
			t.Fatalf("w2 was started after the interrupt: %+v", e)
		}
	}
}
