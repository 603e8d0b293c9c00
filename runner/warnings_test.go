package runner

import (
	"reflect"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/secret"
)

// A module's warnings reach the recap (live, and replayed from the
// journal, redacted in both) and the step's host.end event, also under
// no_log.
func TestWarningsReachTheRecapAndTheJournal(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - name: snapshot
        fake: {tag: a, warn: 'plaintext with s3cr3t-token'}
        no_log: true
      - fake: {tag: b}
`
	red := secret.NewRedactor()
	red.Add("s3cr3t-token")
	recap, err := h.run(t, yml, hostsInv(t, 2), func(o *Options) { o.Redactor = red })
	if err != nil {
		t.Fatal(err)
	}
	want := []Warning{
		{Host: "h1", Step: "snapshot", Msg: "plaintext with " + secret.Redacted + " on h1"},
		{Host: "h2", Step: "snapshot", Msg: "plaintext with " + secret.Redacted + " on h2"},
	}
	sorted := func(ws []Warning) []Warning {
		if len(ws) == 2 && ws[0].Host > ws[1].Host {
			ws[0], ws[1] = ws[1], ws[0]
		}
		return ws
	}
	if got := sorted(recap.Warnings()); !reflect.DeepEqual(got, want) {
		t.Errorf("live recap warnings: %+v", got)
	}
	var evs []events.Event
	for _, e := range h.rec.Events() {
		if e.Type == events.HostEnd && len(e.Warnings) > 0 {
			evs = append(evs, e)
		}
	}
	if len(evs) != 2 || evs[0].Step != "snapshot" {
		t.Fatalf("host.end events with warnings: %+v", evs)
	}
	if got := sorted(ReplayRecap(h.rec.Events()).Warnings()); !reflect.DeepEqual(got, want) {
		t.Errorf("replayed recap warnings: %+v", got)
	}
}

// play.batch is the batch a step runs in: 1 for the first (a canary with
// serial: 1), and play.name the play's.
func TestPlayBatchInExpressions(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - name: rolling
    hosts: nodes
    serial: 1
    steps:
      - name: canary only
        when: 'play.batch == 1 && play.name == "rolling"'
        fake: {tag: canary}
      - fake: {tag: every}
`
	if _, err := h.run(t, yml, hostsInv(t, 3), nil); err != nil {
		t.Fatal(err)
	}
	if h.calls.count("h1:canary") != 1 || h.calls.count("h2:canary")+h.calls.count("h3:canary") != 0 || h.calls.count("h3:every") != 1 {
		t.Fatalf("calls: %v", h.calls.all())
	}
}
