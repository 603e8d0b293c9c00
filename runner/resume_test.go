package runner

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/modules"
)

// journal round-trips events through JSON, as the run directory does.
func journal(t *testing.T, evs []events.Event) []events.Event {
	t.Helper()
	var out []events.Event
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back events.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		out = append(out, back)
	}
	return out
}

const resumable = header + `plays:
  - name: roll
    hosts: nodes
    serial: 1
    steps:
      - fakeundo: {tag: drain, changed: true}
        register: drained
      - set-vars: {seen: '{{ drained.stdout }}'}
      - fake: {tag: work, fail_on: [h2]}
      - fake: {tag: after}
      - assert: {that: ['facts.seen == "drain"']}
`

func TestResumeSkipsFinishedStepsAndRestoresState(t *testing.T) {
	h := newHarness()
	_, err := h.run(t, resumable, hostsInv(t, 3), nil)
	if err == nil {
		t.Fatal("the first run must fail on h2")
	}
	// the first run: h1 done, h2 failed at work (its drain rolled back), h3 untouched
	res := ResumeFrom("first", journal(t, h.rec.Events()))
	if res.Done[StepKey{0, 0, "h1"}].Outcome != events.Changed {
		t.Fatalf("h1's drain should be done: %+v", res.Done)
	}
	if _, ok := res.Done[StepKey{0, 0, "h2"}]; ok {
		t.Fatal("h2's drain was rolled back: it is not done")
	}

	// the operator fixes h2; the resumed run picks up where it stopped
	h2 := newHarness()
	yml := strings.Replace(resumable, "fail_on: [h2]", "fail_on: []", 1)
	_, err = h2.run(t, yml, hostsInv(t, 3), func(o *Options) { o.Resume = res })
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(h2.calls.all(), " ")
	for _, c := range []string{"h1:drain", "h1:work", "h1:after"} {
		if h2.calls.count(c) != 0 {
			t.Errorf("%s ran again: %s", c, calls)
		}
	}
	for _, c := range []string{"h2:drain", "h2:work", "h2:after", "h3:drain", "h3:work", "h3:after"} {
		if h2.calls.count(c) != 1 {
			t.Errorf("%s should run once: %s", c, calls)
		}
	}
	// h1's registered result and facts came back: its assert passed
	var h1 []string
	for _, e := range h2.rec.Events() {
		if e.Type == events.HostEnd && e.Host == "h1" {
			h1 = append(h1, string(e.Outcome)+":"+e.Msg)
		}
	}
	if len(h1) != 5 || !strings.HasPrefix(h1[0], "changed:done in run first") || !strings.HasPrefix(h1[4], "ok") {
		t.Fatalf("h1 in the resumed run: %v", h1)
	}
}

func TestResumeRestoresRollbackOfFinishedSteps(t *testing.T) {
	h := newHarness()
	first := header + `plays:
  - hosts: nodes
    steps:
      - fakeundo: {tag: drain, changed: true}
      - fake: {tag: work, err: unknown, fail_on: [h1]}
`
	h.run(t, first, hostsInv(t, 1), nil)
	evs := journal(t, h.rec.Events())
	// a kill after the drain: the journal ends there (no rollback recorded)
	var cut []events.Event
	for _, e := range evs {
		cut = append(cut, e)
		if e.Type == events.HostEnd && e.Step == "fakeundo" {
			break
		}
	}
	res := ResumeFrom("killed", cut)
	h2 := newHarness()
	second := header + `plays:
  - hosts: nodes
    steps:
      - fakeundo: {tag: drain, changed: true}
      - fake: {tag: work, fail_on: [h1]}
`
	h2.run(t, second, hostsInv(t, 1), func(o *Options) { o.Resume = res })
	calls := strings.Join(h2.calls.all(), " ")
	if h2.calls.count("h1:drain") != 0 || h2.calls.count("undo:h1:drain") != 1 {
		t.Fatalf("the finished drain is not redone, but is still undone when a later step fails: %s", calls)
	}
}

func TestResumeProbesUnknownOutcomes(t *testing.T) {
	unknown := func(string) *Resume {
		return &Resume{From: "r0", Done: map[StepKey]Done{{0, 0, "h1"}: {Outcome: events.Unknown}}}
	}
	// a module with Check: unchanged on probe means it took effect
	h := newHarness()
	_, err := h.run(t, header+"plays:\n  - hosts: nodes\n    steps:\n      - fake: {tag: apply}\n", hostsInv(t, 1), func(o *Options) { o.Resume = unknown("fake") })
	if err != nil || h.calls.count("check:h1:apply") != 1 || h.calls.count("h1:apply") != 0 {
		t.Fatalf("probe, not rerun: %v %v", err, h.calls.all())
	}
	// Check says it would change: the step runs again
	h = newHarness()
	_, err = h.run(t, header+"plays:\n  - hosts: nodes\n    steps:\n      - fake: {tag: apply, changed: true}\n", hostsInv(t, 1), func(o *Options) { o.Resume = unknown("fake") })
	if err != nil || h.calls.count("h1:apply") != 1 {
		t.Fatalf("rerun after a changed probe: %v %v", err, h.calls.all())
	}
	// no Check: the host fails and asks for a person; nothing runs
	h = newHarness()
	h.reg = modules.NewRegistry(plainMod{newFake(h.calls, "plain")})
	_, err = h.run(t, header+"plays:\n  - hosts: nodes\n    steps:\n      - plain: {tag: apply}\n", hostsInv(t, 1), func(o *Options) { o.Resume = unknown("plain") })
	if !errors.Is(err, ErrUnverifiable) || len(h.calls.all()) != 0 {
		t.Fatalf("want ErrUnverifiable and no call: %v %v", err, h.calls.all())
	}
}

// plainMod is a module without Check.
type plainMod struct{ m fakeMod }

func (p plainMod) Name() string              { return p.m.name }
func (p plainMod) Doc() string               { return "no check" }
func (p plainMod) NewParams() modules.Params { return &fakeParams{} }
func (p plainMod) Run(ctx context.Context, t *modules.Target, pr modules.Params) (modules.Result, error) {
	return p.m.Run(ctx, t, pr)
}

// An Undo reads its step's Data in the same form in the run that made the
// change and in a resumed run, where the Data comes from the journal.
func TestUndoSeesTheSameStateLiveAndResumed(t *testing.T) {
	states := func(c *calls) []string {
		var out []string
		for _, x := range c.all() {
			if strings.HasPrefix(x, "state:") {
				out = append(out, x)
			}
		}
		return out
	}
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fakeundo: {tag: drain, changed: true, state: true}
      - fake: {tag: work, err: unknown, fail_on: [h1]}
`
	live := newHarness()
	live.run(t, yml, hostsInv(t, 1), nil)
	// a kill after the first step: the journal ends there
	var cut []events.Event
	for _, e := range journal(t, live.rec.Events()) {
		cut = append(cut, e)
		if e.Type == events.HostEnd && e.Step == "fakeundo" {
			break
		}
	}
	resumed := newHarness()
	resumed.run(t, strings.Replace(yml, "err: unknown, ", "", 1), hostsInv(t, 1), func(o *Options) { o.Resume = ResumeFrom("killed", cut) })
	a, b := states(live.calls), states(resumed.calls)
	if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
		t.Fatalf("Undo saw different state live and resumed:\nlive:    %v\nresumed: %v", a, b)
	}
}
