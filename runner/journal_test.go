package runner

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/output"
	"github.com/kubeplay/kubeplay/transport/local"
)

// An event the journal cannot write (a fact of +Inf has no JSON form)
// stops the run at the next step boundary, with a clear error (exit 1),
// instead of leaving a journal that silently lost it.
func TestJournalWriteErrorStopsTheRun(t *testing.T) {
	h := newHarness()
	var journal bytes.Buffer
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a}
        rollback:
          - fake: {tag: undo-a}
      - set-vars: {x: '{{ 1.0 / 0 }}'}
      - fake: {tag: never}
`
	_, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.Sink = events.Multi{h.rec, output.NewJSON(&journal)} })
	if !errors.Is(err, failure.ErrJournal) || failure.ExitCode(err) != failure.ExitError || !strings.Contains(err.Error(), "host.end") {
		t.Fatalf("want a journal error naming the event, exit 1; got %v (exit %d)", err, failure.ExitCode(err))
	}
	if h.calls.count("h1:never") != 0 {
		t.Fatal("a step started after the journal failed")
	}
	if h.calls.count("h1:undo-a") != 1 {
		t.Fatalf("the host was not rolled back: %v", h.calls.all())
	}
}

// What the journal cannot hold whole is not trusted by a resume: a result
// with a masked secret or cut output runs again; a rollback that started
// and never ended leaves the step unknown (probed).
func TestResumeFromDistrustsWhatTheJournalLost(t *testing.T) {
	ev := func(typ events.Type, step int, o events.Outcome, mod func(*events.Event)) events.Event {
		e := events.Event{Type: typ, StepIdx: step, Host: "h1", Outcome: o}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	r := ResumeFrom("r1", []events.Event{
		ev(events.HostEnd, 0, events.Changed, nil),
		ev(events.HostEnd, 1, events.Changed, func(e *events.Event) { e.Redacted = true }),
		ev(events.HostEnd, 2, events.OK, func(e *events.Event) { e.Cut = 10 }),
		ev(events.HostEnd, 3, events.Changed, nil),
		ev(events.HostEnd, 4, events.Changed, nil),
		ev(events.RollbackStart, 4, "", nil),
		ev(events.RollbackStart, 3, "", nil),
		ev(events.RollbackEnd, 3, events.RolledBack, nil),
	})
	want := map[int]events.Outcome{0: events.Changed, 4: events.Unknown}
	if len(r.Done) != len(want) {
		t.Fatalf("done: %+v", r.Done)
	}
	for step, o := range want {
		if d := r.Done[StepKey{0, step, "h1"}]; d.Outcome != o {
			t.Errorf("step %d: %s, want %s", step, d.Outcome, o)
		}
	}
}

// A step whose registered result holds a secret is marked so in the
// journal, where the secret shows as [REDACTED].
func TestResultWithASecretIsMarkedRedacted(t *testing.T) {
	h := newHarness()
	h.reg = modules.NewRegistry(modules.Shell{})
	var journal bytes.Buffer
	yml := header + tokParam + `plays:
  - hosts: localhost
    steps:
      - shell: {cmd: 'echo "token=$T"', env: {T: '{{ params.tok }}'}}
        register: out
      - shell: {cmd: 'echo plain'}
`
	if _, err := h.run(t, yml, localInv(t), func(o *Options) {
		o.Local, o.Params = local.Conn{}, map[string]any{"tok": "tok-0123456789"}
		o.Sink = events.Multi{h.rec, output.NewJSON(&journal)}
	}); err != nil {
		t.Fatal(err)
	}
	ends := h.rec.Filter(events.HostEnd)
	if len(ends) != 2 || !ends[0].Redacted || ends[1].Redacted || strings.Contains(journal.String(), "tok-0123456789") {
		t.Fatalf("host.end events %+v", ends)
	}
}
