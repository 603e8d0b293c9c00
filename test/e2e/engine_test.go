// Package e2e runs kubeplay end to end against the lab: real sshd nodes,
// real files, real commands.
package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

type result struct {
	recap *runner.Recap
	err   error
	rec   *events.Recorder
}

func runPlaybook(t *testing.T, l *lab.Lab, src string, mod func(*runner.Options)) result {
	t.Helper()
	return runPlaybookCtx(context.Background(), t, l, src, mod)
}

func runPlaybookCtx(ctx context.Context, t *testing.T, l *lab.Lab, src string, mod func(*runner.Options)) result {
	t.Helper()
	r := harness.RunCtx(ctx, t, l, "e2e.yaml", []byte(src), mod)
	return result{r.Recap, r.Err, r.Rec}
}

func nodeFile(t *testing.T, l *lab.Lab, node, path string) string {
	t.Helper()
	out, _ := l.Exec(context.Background(), node, "cat "+path+" 2>/dev/null || echo '<absent>'")
	return strings.TrimSpace(out)
}

const converge = `apiVersion: kubeplay/v1
kind: Playbook
name: e2e-converge
params:
  marker: {type: string, default: /etc/kubeplay-e2e}
plays:
  - name: every node
    hosts: nodes
    serial: 2
    steps:
      - name: write marker
        shell:
          cmd: 'hostname > {{ params.marker }}'
          creates: '{{ params.marker }}'
        register: wrote
      - name: read it back
        command: {argv: [cat, '{{ params.marker }}']}
        register: back
        changed_when: false
        check_mode: false
        failed_when: '!run.check && back.rc != 0'
      - when: '!run.check'
        assert:
          that: ['back.stdout == host.name + "\n"']
          msg: 'marker holds {{ back.stdout }} (rc {{ back.rc }})'
`

func TestConvergeCheckAndIdempotence(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	for _, n := range l.ClusterNodes() {
		l.Exec(ctx, n.Name, "rm -f /etc/kubeplay-e2e")
	}
	// check mode on an unconverged lab: predicts changes, changes nothing
	r := runPlaybook(t, l, converge, func(o *runner.Options) { o.Check = true })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.recap.Totals().Changed; got != len(l.ClusterNodes()) {
		t.Fatalf("check mode should predict %d changes, got %d", len(l.ClusterNodes()), got)
	}
	for _, n := range l.ClusterNodes() {
		if got := nodeFile(t, l, n.Name, "/etc/kubeplay-e2e"); got != "<absent>" {
			t.Fatalf("check mode wrote on %s: %q", n.Name, got)
		}
	}
	// real run: every node gets its own hostname
	r = runPlaybook(t, l, converge, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, n := range l.ClusterNodes() {
		if got := nodeFile(t, l, n.Name, "/etc/kubeplay-e2e"); got != n.Name {
			t.Fatalf("%s: marker %q", n.Name, got)
		}
	}
	// second run: converged, nothing changes
	r = runPlaybook(t, l, converge, nil)
	if r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second run changed %d (err %v)", r.recap.Totals().Changed, r.err)
	}
}

func TestFailedNodeRollsBackAndStopsBatches(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	for _, n := range l.ClusterNodes() {
		l.Exec(ctx, n.Name, "rm -f /etc/kubeplay-cordoned")
	}
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: e2e-rollback
plays:
  - hosts: workers
    serial: 1
    steps:
      - name: cordon (simulated)
        shell: {cmd: 'touch /etc/kubeplay-cordoned'}
        rollback:
          - shell: {cmd: 'rm -f /etc/kubeplay-cordoned'}
      - name: upgrade (fails on the first worker)
        shell: {cmd: 'test "$(hostname)" != w1'}
`
	r := runPlaybook(t, l, src, nil)
	var re *failure.RunError
	if !errors.As(r.err, &re) || re.Hosts[0].Host != "w1" {
		t.Fatalf("want w1 to fail: %v", r.err)
	}
	if got := nodeFile(t, l, "w1", "/etc/kubeplay-cordoned"); got != "<absent>" {
		t.Fatal("w1 was not rolled back")
	}
	if got := nodeFile(t, l, "w2", "/etc/kubeplay-cordoned"); got != "<absent>" {
		t.Fatal("w2 is in a later batch and must not be touched")
	}
	if len(r.rec.Filter(events.RollbackEnd)) != 1 {
		t.Fatal("want exactly one rollback")
	}
}

func TestBundledRuntimeAudit(t *testing.T) {
	l := lab.Start(t)
	src, err := playbooks.Source("audit-runtime-endpoint")
	if err != nil {
		t.Fatal(err)
	}
	r := runPlaybook(t, l, string(src), func(o *runner.Options) {
		o.Params = map[string]any{"expect": "unix:///run/containerd/containerd.sock"}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.recap.Totals().Changed != 0 {
		t.Fatal("an audit changes nothing")
	}
	// a node whose kubelet uses another endpoint than expected is reported and fails
	r = runPlaybook(t, l, string(src), func(o *runner.Options) {
		o.Params = map[string]any{"expect": "unix:///run/cri-dockerd.sock"}
		o.Limit = "w2"
	})
	var re *failure.RunError
	if !errors.As(r.err, &re) || re.Hosts[0].Host != "w2" || !strings.Contains(r.err.Error(), "w2 uses unix:///run/containerd/containerd.sock") {
		t.Fatalf("want w2 reported with its endpoint: %v", r.err)
	}
}
