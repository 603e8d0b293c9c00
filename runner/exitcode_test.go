package runner

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
)

// A module that panics fails its host only: the host rolls back, the other
// host finishes, run.end is written and the exit code is 3.
func TestModulePanicFailsOnlyThatHost(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    max_fail_percentage: 50
    steps:
      - fake: {tag: a}
        rollback:
          - fake: {tag: undo-a}
      - fake: {tag: b, panic_on: [h1]}
      - fake: {tag: c}
`
	_, err := h.run(t, yml, hostsInv(t, 2), nil)
	if !errors.Is(err, failure.ErrModulePanic) || failure.ExitCode(err) != failure.ExitHostFailed {
		t.Fatalf("want a module panic, exit 3; got %v (exit %d)", err, failure.ExitCode(err))
	}
	if h.calls.count("h1:undo-a") != 1 || h.calls.count("h2:c") != 1 || h.calls.count("h1:c") != 0 {
		t.Fatalf("calls %v", h.calls.all())
	}
	if ends := h.rec.Filter(events.RunEnd); len(ends) != 1 || ends[0].Outcome != events.Failed {
		t.Fatalf("run.end %+v", ends)
	}
}

// A parameter that only the run can check (a host var rendered into an
// integer) fails after earlier steps changed things: that is a host's
// failure (exit 3), never "validation failed, nothing was touched" (2).
func TestRunTimeDecodeErrorAfterChangesIsNotExit2(t *testing.T) {
	h := newHarness()
	inv, err := inventory.Parse("inv.yaml", []byte("groups:\n  nodes:\n    hosts: [h1]\n    vars: {n: abc}\n"))
	if err != nil {
		t.Fatal(err)
	}
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a, changed: true}
      - fake: {tag: b, fail_times: '{{ host.vars.n }}'}
`
	_, err = h.run(t, yml, inv, nil)
	if err == nil || failure.ExitCode(err) != failure.ExitHostFailed {
		t.Fatalf("want exit 3, got %v (exit %d)", err, failure.ExitCode(err))
	}
	if !strings.Contains(err.Error(), "test.yaml:") || strings.Contains(err.Error(), "[level:") {
		t.Fatalf("the diagnostic should name the playbook file: %v", err)
	}
}

// Every play's hosts resolve before the first play runs: a later play
// whose pattern (or role) matches nothing refuses the whole run with exit
// 2, and the first play's step never runs. (Before, the run stopped
// halfway, after the first play had changed its hosts: exit 3.)
func TestPlayHostsResolveBeforeTheFirstPlay(t *testing.T) {
	for _, pattern := range []string{"nosuchgroup", "role:control_plane"} {
		h := newHarness()
		yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a, changed: true}
  - hosts: '` + pattern + `'
    steps:
      - fake: {tag: b}
`
		_, err := h.run(t, yml, hostsInv(t, 1), nil)
		if failure.ExitCode(err) != failure.ExitValidation || !strings.Contains(err.Error(), pattern) {
			t.Fatalf("%s: want exit 2 naming it, got %v (exit %d)", pattern, err, failure.ExitCode(err))
		}
		if n := len(h.calls.all()); n != 0 {
			t.Fatalf("%s: steps ran before the refusal: %v", pattern, h.calls.all())
		}
	}
}

// The recap lists hosts in the play's (inventory) order, not in the order
// their goroutines happened to finish.
func TestRecapInInventoryOrder(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a, slow_on: [h1, h2]}
`
	recap, err := h.run(t, yml, hostsInv(t, 4), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recap.Hosts() {
		got = append(got, r.Host)
	}
	if strings.Join(got, ",") != "h1,h2,h3,h4" {
		t.Fatalf("recap order %v", got)
	}
}

// A panic of the engine itself (here: an output sink that panics) fails
// that host with an internal error: it rolls back, run.end is written and
// the exit code is 1, never Go's 2.
func TestEnginePanicIsAnInternalError(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a}
        rollback:
          - fake: {tag: undo-a}
      - fake: {tag: b}
`
	armed := true
	sink := events.Multi{h.rec, sinkFunc(func(e events.Event) {
		if armed && e.Type == events.HostStart && e.StepIdx == 1 {
			armed = false
			panic("sink bug")
		}
	})}
	_, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.Sink = sink })
	if !errors.Is(err, failure.ErrInternal) || failure.ExitCode(err) != failure.ExitError {
		t.Fatalf("want an internal error, exit 1; got %v (exit %d)", err, failure.ExitCode(err))
	}
	if h.calls.count("h1:undo-a") != 1 || h.calls.count("h1:b") != 0 {
		t.Fatalf("calls %v", h.calls.all())
	}
	if len(h.rec.Filter(events.RunEnd)) != 1 {
		t.Fatal("no run.end")
	}
}

// The recap replayed from a journal (kubeplay runs show) is the one the run
// printed: same hosts, order, counts and times.
func TestReplayRecapMatchesTheLiveRecap(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    max_fail_percentage: 50
    steps:
      - fake: {tag: a, changed: true}
        rollback:
          - fake: {tag: undo-a}
      - fake: {tag: b, fail_on: [h2], slow_on: [h1]}
`
	live, _ := h.run(t, yml, hostsInv(t, 3), nil)
	replayed := ReplayRecap(h.rec.Events())
	if !reflect.DeepEqual(live.Hosts(), replayed.Hosts()) {
		t.Fatalf("live %+v\nreplayed %+v", live.Hosts(), replayed.Hosts())
	}
	if got := replayed.Hosts()[1]; got.Host != "h2" || got.Failed != 1 || got.RolledBack != 1 || got.Changed != 1 {
		t.Fatalf("h2: %+v", got)
	}
}
