package runner

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/secret"
)

type harness struct {
	calls *calls
	clock *fakeClock
	rec   *events.Recorder
	conn  *fakeConnector
	reg   *modules.Registry
	// undoOn records each fakeundo Undo's host, tag and connection
	undoOn *calls
}

func newHarness() *harness {
	c, on := &calls{}, &calls{}
	return &harness{
		calls: c, clock: newFakeClock(), rec: &events.Recorder{}, conn: &fakeConnector{}, undoOn: on,
		reg: modules.NewRegistry(newFake(c, "fake"), undoMod{newFake(c, "fakeundo"), on}, modules.Assert{}, modules.SetVars{}, modules.Debug{}),
	}
}

func hostsInv(t *testing.T, n int) *inventory.Inventory {
	t.Helper()
	var b strings.Builder
	b.WriteString("groups:\n  nodes:\n    hosts: [")
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "h%d", i)
	}
	b.WriteString("]\n")
	inv, err := inventory.Parse("inv.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (h *harness) run(t *testing.T, yml string, inv *inventory.Inventory, mod func(*Options)) (*Recap, error) {
	t.Helper()
	pb, err := playbook.Load("test.yaml", []byte(yml), h.reg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	opts := Options{RunID: "test", Sink: h.rec, Clock: h.clock, Connector: h.conn, Forks: 10}
	if mod != nil {
		mod(&opts)
	}
	return Run(context.Background(), pb, inv, opts)
}

const header = "apiVersion: kubeplay/v1\nkind: Playbook\nname: t\n"

func TestBatches(t *testing.T) {
	hosts := []string{"a", "b", "c", "d", "e", "f", "g"}
	cases := []struct {
		serial []playbook.Serial
		want   []int
	}{
		{nil, []int{7}},
		{[]playbook.Serial{{N: 2}}, []int{2, 2, 2, 1}},
		{[]playbook.Serial{{N: 1}, {N: 3}}, []int{1, 3, 3}},
		{[]playbook.Serial{{N: 30, Percent: true}}, []int{2, 2, 2, 1}},
		{[]playbook.Serial{{N: 10, Percent: true}}, []int{1, 1, 1, 1, 1, 1, 1}}, // rounds down, at least 1
		{[]playbook.Serial{{N: 1}, {N: 50, Percent: true}, {N: 100, Percent: true}}, []int{1, 3, 3}},
		{[]playbook.Serial{{N: 20}}, []int{7}},
	}
	for _, c := range cases {
		var got []int
		for _, b := range Batches(hosts, c.serial) {
			got = append(got, len(b))
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("serial %v: got %v want %v", c.serial, got, c.want)
		}
	}
}

func TestFailureThresholdStopsLaterBatches(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - name: roll
    hosts: nodes
    serial: 2
    steps:
      - fake: {tag: one, fail_on: [h3]}
      - fake: {tag: two}
`
	_, err := h.run(t, yml, hostsInv(t, 6), nil)
	var re *failure.RunError
	if !errors.As(err, &re) {
		t.Fatalf("want RunError, got %v", err)
	}
	if len(re.Hosts) != 1 || re.Hosts[0].Host != "h3" {
		t.Fatalf("error should name h3 only: %v", err)
	}
	if !strings.Contains(err.Error(), "h3") {
		t.Fatalf("message does not name h3: %v", err)
	}
	if failure.ExitCode(err) != failure.ExitHostFailed {
		t.Fatalf("exit code %d", failure.ExitCode(err))
	}
	for _, c := range h.calls.all() {
		if strings.HasPrefix(c, "h5:") || strings.HasPrefix(c, "h6:") {
			t.Fatalf("later batch touched: %v", h.calls.all())
		}
	}
	// h4 is in the failing batch: it finishes the current step, then the run stops
	if h.calls.count("h4:one") != 1 || h.calls.count("h4:two") != 0 {
		t.Fatalf("h4 should run step one only: %v", h.calls.all())
	}
	if h.calls.count("h1:two") != 1 || h.calls.count("h2:two") != 1 {
		t.Fatalf("first batch should complete: %v", h.calls.all())
	}
}

func TestMaxFailPercentageTolerates(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - name: roll
    hosts: nodes
    serial: 2
    max_fail_percentage: 50
    steps:
      - fake: {tag: one, fail_on: [h3]}
      - fake: {tag: two}
`
	_, err := h.run(t, yml, hostsInv(t, 6), nil)
	var re *failure.RunError
	if !errors.As(err, &re) || len(re.Hosts) != 1 {
		t.Fatalf("want RunError naming h3, got %v", err)
	}
	if h.calls.count("h6:two") != 1 || h.calls.count("h4:two") != 1 {
		t.Fatalf("50%% tolerance should let the rest run: %v", h.calls.all())
	}
	if h.calls.count("h3:two") != 0 {
		t.Fatal("a failed host must leave the play")
	}
}

func TestRollbackLIFOOnlyOnFailedHost(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - name: p
    hosts: nodes
    steps:
      - fake: {tag: a}
        rollback:
          - fake: {tag: undo-a}
      - fakeundo: {tag: b}
      - fake: {tag: c}
        rollback:
          - fake: {tag: undo-c1}
          - fake: {tag: undo-c2}
      - fake: {tag: d, fail_on: [h2]}
`
	_, err := h.run(t, yml, hostsInv(t, 3), nil)
	if err == nil {
		t.Fatal("want failure")
	}
	var h2 []string
	for _, c := range h.calls.all() {
		if strings.Contains(c, "h2:") {
			h2 = append(h2, c)
		}
		if strings.Contains(c, "undo") && !strings.Contains(c, "h2:") {
			t.Fatalf("rollback ran on a healthy host: %s", c)
		}
	}
	want := []string{"h2:a", "h2:b", "h2:c", "h2:d", "h2:undo-c1", "h2:undo-c2", "undo:h2:b", "h2:undo-a"}
	if !reflect.DeepEqual(h2, want) {
		t.Fatalf("h2 calls\n got %v\nwant %v", h2, want)
	}
	rb := h.rec.Filter(events.RollbackEnd)
	if len(rb) != 3 || rb[0].Step != "fake" || rb[0].StepIdx != 2 || rb[2].StepIdx != 0 {
		t.Fatalf("rollback events not LIFO: %+v", rb)
	}
}

func TestRetryClassification(t *testing.T) {
	t.Run("non-retryable runs once", func(t *testing.T) {
		h := newHarness()
		yml := header + `plays:
  - hosts: h1
    steps:
      - fake: {tag: x, fail_on: [h1], err: fatal}
        retries: 4
        delay: 1s
`
		if _, err := h.run(t, yml, hostsInv(t, 1), nil); err == nil {
			t.Fatal("want failure")
		}
		if n := h.calls.count("h1:x"); n != 1 {
			t.Fatalf("attempts = %d, want 1", n)
		}
		if len(h.clock.waits) != 0 {
			t.Fatalf("waited %v", h.clock.waits)
		}
	})
	t.Run("retryable backs off on the clock", func(t *testing.T) {
		h := newHarness()
		yml := header + `plays:
  - hosts: h1
    steps:
      - fake: {tag: x, fail_on: [h1], err: retryable}
        retries: 3
        delay: 1s
        backoff: 2
`
		if _, err := h.run(t, yml, hostsInv(t, 1), nil); err == nil {
			t.Fatal("want failure after retries")
		}
		if n := h.calls.count("h1:x"); n != 4 {
			t.Fatalf("attempts = %d, want 4 (1 + 3 retries)", n)
		}
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
		if !reflect.DeepEqual(h.clock.waits, want) {
			t.Fatalf("waits %v want %v", h.clock.waits, want)
		}
		if got := len(h.rec.Filter(events.Retry)); got != 3 {
			t.Fatalf("retry events %d", got)
		}
	})
	t.Run("retryable recovers", func(t *testing.T) {
		h := newHarness()
		yml := header + `plays:
  - hosts: h1
    steps:
      - fake: {tag: x, fail_on: [h1], err: retryable, fail_times: 2}
        retries: 5
        delay: 1s
`
		if _, err := h.run(t, yml, hostsInv(t, 1), nil); err != nil {
			t.Fatal(err)
		}
		if n := h.calls.count("h1:x"); n != 3 {
			t.Fatalf("attempts = %d, want 3", n)
		}
	})
	t.Run("unknown outcome is never retried", func(t *testing.T) {
		h := newHarness()
		yml := header + `plays:
  - hosts: h1
    steps:
      - fake: {tag: x, fail_on: [h1], err: unknown}
        retries: 3
`
		_, err := h.run(t, yml, hostsInv(t, 1), nil)
		if !errors.Is(err, failure.ErrUnknownOutcome) {
			t.Fatalf("want unknown outcome, got %v", err)
		}
		if n := h.calls.count("h1:x"); n != 1 {
			t.Fatalf("attempts = %d", n)
		}
		ends := h.rec.Filter(events.HostEnd)
		if ends[0].Outcome != events.Unknown {
			t.Fatalf("outcome %s", ends[0].Outcome)
		}
	})
}

func TestUntil(t *testing.T) {
	h := newHarness()
	// the step succeeds each time; until holds from the third attempt on
	yml := header + `plays:
  - hosts: h1
    steps:
      - set-vars: {n: 0}
      - fake: {tag: poll}
        register: polled
        until: 'len(inventory.hosts) == 1 && polled.stdout == "poll" && facts.n == 0 && false'
        retries: 2
        delay: 10s
`
	_, err := h.run(t, yml, hostsInv(t, 1), nil)
	if err == nil || !strings.Contains(err.Error(), "until condition not met") {
		t.Fatalf("want until failure, got %v", err)
	}
	if n := h.calls.count("h1:poll"); n != 3 {
		t.Fatalf("attempts %d want 3", n)
	}
	if !reflect.DeepEqual(h.clock.waits, []time.Duration{10 * time.Second, 10 * time.Second}) {
		t.Fatalf("waits %v", h.clock.waits)
	}

	h = newHarness()
	yml = header + `plays:
  - hosts: h1
    steps:
      - fake: {tag: poll, fail_on: [h1], err: fatal}
        register: polled
        failed_when: 'false'
        until: polled.ran
        retries: 2
`
	if _, err := h.run(t, yml, hostsInv(t, 1), nil); err != nil {
		t.Fatalf("failed_when false should clear the failure: %v", err)
	}
}

func TestHandlersOncePerBatch(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    serial: 2
    steps:
      - fake: {tag: edit1, changed: true}
        notify: [restart]
      - fake: {tag: edit2, changed: true}
        notify: [restart]
      - fake: {tag: noop}
        notify: [restart]
    handlers:
      - name: restart
        fake: {tag: restart}
`
	if _, err := h.run(t, yml, hostsInv(t, 4), nil); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"h1", "h2", "h3", "h4"} {
		if n := h.calls.count(host + ":restart"); n != 1 {
			t.Fatalf("%s restarted %d times", host, n)
		}
	}
	// batch 1's handler runs before batch 2 starts
	all := h.calls.all()
	idx := func(s string) int {
		for i, c := range all {
			if c == s {
				return i
			}
		}
		return -1
	}
	if idx("h1:restart") > idx("h3:edit1") {
		t.Fatalf("handler did not run at the end of its batch: %v", all)
	}
}

func TestHandlerNotNotifiedWithoutChange(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: edit}
        notify: [restart]
    handlers:
      - name: restart
        fake: {tag: restart}
`
	if _, err := h.run(t, yml, hostsInv(t, 2), nil); err != nil {
		t.Fatal(err)
	}
	if n := h.calls.count("h1:restart"); n != 0 {
		t.Fatal("unchanged step notified")
	}
}

func TestCheckModeChangesNothing(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a, changed: true}
        rollback:
          - fake: {tag: undo}
      - fakeundo: {tag: b, changed: true}
`
	recap, err := h.run(t, yml, hostsInv(t, 2), func(o *Options) { o.Check = true })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range h.calls.all() {
		if !strings.HasPrefix(c, "check:") {
			t.Fatalf("check mode ran %s", c)
		}
	}
	if got := recap.Totals().Changed; got != 4 {
		t.Fatalf("check should report 4 would-be changes, got %d", got)
	}
}

// check_mode: true predicts even in a real run (a preflight); the other
// steps run for real.
func TestCheckModeTrueAlwaysPredicts(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: preflight, changed: true}
        check_mode: true
      - fake: {tag: real, changed: true}
`
	if _, err := h.run(t, yml, hostsInv(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range h.calls.all() {
		if strings.Contains(c, "preflight") || strings.Contains(c, "real") {
			got = append(got, c)
		}
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "check:") || strings.HasPrefix(got[1], "check:") {
		t.Fatalf("want the preflight predicted and the other step run: %v", got)
	}
}

func TestWhenRegisterRunOnce(t *testing.T) {
	h := newHarness()
	yml := header + `params:
  target: {type: string, default: h2}
plays:
  - hosts: nodes
    steps:
      - fake: {tag: only-target}
        when: host.name == params.target
        register: r
      - fake: {tag: after-skip}
        when: r.skipped
      - fake: {tag: once}
        run_once: true
        register: o
      - fake: {tag: saw-once}
        when: o.stdout == "once"
`
	if _, err := h.run(t, yml, hostsInv(t, 3), nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range h.calls.all() {
		got[c]++
	}
	want := map[string]int{"h2:only-target": 1, "h1:after-skip": 1, "h3:after-skip": 1, "h1:once": 1,
		"h1:saw-once": 1, "h2:saw-once": 1, "h3:saw-once": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestRescueAndAlways(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    max_fail_percentage: 100
    steps:
      - fake: {tag: a, fail_on: [h1]}
      - fake: {tag: b}
    rescue:
      - fake: {tag: rescue}
    always:
      - fake: {tag: always}
`
	recap, err := h.run(t, yml, hostsInv(t, 2), nil)
	if err != nil {
		t.Fatalf("a rescued host is not failed: %v", err)
	}
	got := h.calls.all()
	for _, want := range []string{"h1:rescue", "h1:always", "h2:always", "h2:b"} {
		if h.calls.count(want) != 1 {
			t.Fatalf("missing %s in %v", want, got)
		}
	}
	if h.calls.count("h2:rescue") != 0 || h.calls.count("h1:b") != 0 {
		t.Fatalf("rescue must run on failed hosts only: %v", got)
	}
	if recap.Totals().Rescued != 1 {
		t.Fatal("rescue not counted")
	}
}

func TestTagsAndStartAt(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: h1
    steps:
      - {name: s1, fake: {tag: s1}, tags: [pre]}
      - {name: s2, fake: {tag: s2}, tags: [main]}
      - {name: s3, fake: {tag: s3}, tags: [always]}
      - {name: s4, fake: {tag: s4}}
`
	if _, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.Tags = []string{"main"} }); err != nil {
		t.Fatal(err)
	}
	if got := h.calls.all(); !reflect.DeepEqual(got, []string{"h1:s2", "h1:s3"}) {
		t.Fatalf("tags: %v", got)
	}
	h = newHarness()
	if _, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.StartAtStep = "s3"; o.SkipTags = []string{"always"} }); err != nil {
		t.Fatal(err)
	}
	if got := h.calls.all(); !reflect.DeepEqual(got, []string{"h1:s4"}) {
		t.Fatalf("start-at + skip-tags: %v", got)
	}
}

func TestSecretsRedactedInEvents(t *testing.T) {
	h := newHarness()
	yml := header + `params:
  token: {type: string, secret: true, required: true}
plays:
  - hosts: h1
    steps:
      - debug: {msg: 'token is {{ params.token }}'}
      - assert:
          that: ['params.token != params.token']
          msg: 'bad token'
`
	_, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.Params = map[string]any{"token": "s3cr3t-value"} })
	if err == nil {
		t.Fatal("assert should fail")
	}
	for _, ev := range h.rec.Events() {
		if strings.Contains(fmt.Sprintf("%+v", ev), "s3cr3t-value") {
			t.Fatalf("secret leaked in event %+v", ev)
		}
	}
}

func TestInterruptRunsRollbackAndStops(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: drain}
        rollback:
          - fake: {tag: uncordon}
      - fake: {tag: long, block: true}
      - fake: {tag: never}
`
	pb, err := playbook.Load("t.yaml", []byte(yml), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sink := events.Multi{h.rec, sinkFunc(func(e events.Event) {
		if e.Type == events.StepStart && e.Step == "fake" && e.StepIdx == 1 {
			cancel()
		}
	})}
	_, err = Run(ctx, pb, hostsInv(t, 2), Options{Sink: sink, Clock: h.clock, Connector: h.conn})
	if !errors.Is(err, failure.ErrInterrupted) || failure.ExitCode(err) != failure.ExitInterrupted {
		t.Fatalf("want interrupted, got %v", err)
	}
	for _, host := range []string{"h1", "h2"} {
		if h.calls.count(host+":uncordon") != 1 {
			t.Fatalf("%s not rolled back: %v", host, h.calls.all())
		}
		if h.calls.count(host+":never") != 0 {
			t.Fatal("a new step started after the interrupt")
		}
	}
}

type sinkFunc func(events.Event)

func (f sinkFunc) Emit(e events.Event) { f(e) }

func TestConnectionReusedPerHost(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a}
      - fake: {tag: b}
  - hosts: nodes
    steps:
      - fake: {tag: c}
`
	if _, err := h.run(t, yml, hostsInv(t, 2), nil); err != nil {
		t.Fatal(err)
	}
	if len(h.conn.connects) != 2 {
		t.Fatalf("connects %v", h.conn.connects)
	}
}

func TestLimit(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fake: {tag: a}
`
	if _, err := h.run(t, yml, hostsInv(t, 4), func(o *Options) { o.Limit = "nodes[1:3],!h3" }); err != nil {
		t.Fatal(err)
	}
	if got := h.calls.all(); len(got) != 1 || got[0] != "h2:a" {
		t.Fatalf("limit: %v", got)
	}
}

func TestChangedWhenAndFailedWhenDecideTheOutcome(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: h1
    steps:
      - fake: {tag: probe, changed: true}
        register: p
        changed_when: 'p.stdout == "nope"'
      - fake: {tag: quiet}
        register: q
        changed_when: true
      - fake: {tag: bad}
        register: b
        failed_when: 'b.stdout == "bad"'
`
	recap, err := h.run(t, yml, hostsInv(t, 1), nil)
	if err == nil || !strings.Contains(err.Error(), "failed_when") {
		t.Fatalf("failed_when should fail the step: %v", err)
	}
	var outcomes []events.Outcome
	for _, e := range h.rec.Filter(events.HostEnd) {
		outcomes = append(outcomes, e.Outcome)
	}
	want := []events.Outcome{events.OK, events.Changed, events.Failed}
	if !reflect.DeepEqual(outcomes, want) {
		t.Fatalf("outcomes %v want %v", outcomes, want)
	}
	if recap.Totals().Changed != 1 {
		t.Fatalf("recap changed %d", recap.Totals().Changed)
	}
}

func TestTemplatedHostsAndSerial(t *testing.T) {
	h := newHarness()
	yml := header + `params:
  target: {type: string, default: nodes}
  batch: {type: string, default: "50%"}
plays:
  - hosts: '{{ params.target }}:!h1'
    serial: '{{ params.batch }}'
    steps:
      - fake: {tag: a}
`
	if _, err := h.run(t, yml, hostsInv(t, 5), nil); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, b := range h.rec.Filter(events.BatchStart) {
		sizes = append(sizes, len(b.Hosts))
	}
	// 4 hosts (h1 excluded), 50% of 4 = 2 per batch
	if !reflect.DeepEqual(sizes, []int{2, 2}) || h.calls.count("h1:a") != 0 {
		t.Fatalf("batches %v calls %v", sizes, h.calls.all())
	}
	_, err := h.run(t, yml, hostsInv(t, 5), func(o *Options) { o.Params = map[string]any{"batch": "lots"} })
	if !errors.Is(err, failure.ErrValidation) {
		t.Fatalf("a bad rendered serial is a validation error: %v", err)
	}
}

// peerMod opens the connection of another host named in its params.
type peerMod struct{}

type peerParams struct {
	Peer string `yaml:"peer"`
}

func (*peerParams) Validate() error       { return nil }
func (peerMod) Name() string              { return "peer" }
func (peerMod) Doc() string               { return "test module" }
func (peerMod) NewParams() modules.Params { return &peerParams{} }
func (peerMod) Run(ctx context.Context, t *modules.Target, p modules.Params) (modules.Result, error) {
	name := p.(*peerParams).Peer
	info, ok := t.Peers.Host(name)
	if _, err := t.Peers.Conn(ctx, name); err != nil {
		return modules.Result{}, err
	}
	return modules.Result{Msg: fmt.Sprintf("%s %v %s", info.Name, ok, info.Address)}, nil
}

// A step reaches another inventory host through Target.Peers: the host's
// one connection is shared with that host's own steps (opened once, even
// when both ask at the same time), and an unknown host is an error.
func TestPeersShareConnections(t *testing.T) {
	h := newHarness()
	inv, err := inventory.Parse("inv.yaml", []byte("hosts:\n  h1: {address: 10.0.0.1}\n  h2: {address: 10.0.0.2}\n  h3: {address: 10.0.0.3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h.reg = modules.NewRegistry(peerMod{}, newFake(h.calls, "fake"), modules.Assert{})
	if _, err := h.run(t, header+`plays:
  - hosts: h1,h3
    steps:
      - peer: {peer: h3}
        register: p
      - fake: {tag: a}
      - assert: {that: ['p.msg == "h3 true 10.0.0.3"']}
`, inv, nil); err != nil {
		t.Fatal(err)
	}
	slices.Sort(h.conn.connects)
	if !slices.Equal(h.conn.connects, []string{"h1", "h3"}) {
		t.Fatalf("connections opened: %v (want one each for h1 and h3)", h.conn.connects)
	}
	_, err = h.run(t, header+"plays:\n  - hosts: h1\n    steps:\n      - peer: {peer: nope}\n", inv, nil)
	if !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
}

// secretMod returns a secret it made, then (echo: true) prints it raw, as a
// later careless command might.
type secretMod struct{}

type secretParams struct {
	Echo bool `yaml:"echo"`
}

func (*secretParams) Validate() error       { return nil }
func (secretMod) Name() string              { return "mint" }
func (secretMod) Doc() string               { return "test module" }
func (secretMod) NewParams() modules.Params { return &secretParams{} }
func (secretMod) Run(_ context.Context, _ *modules.Target, p modules.Params) (modules.Result, error) {
	const minted = "minted-0123456789abcdef"
	if p.(*secretParams).Echo {
		return modules.Result{Stdout: "the token: " + minted, Msg: "echoed " + minted}, nil
	}
	return modules.Result{Data: map[string]any{"token": secret.New(minted), "id": "minted"}}, nil
}

// A secret a step produces joins the redactor: wherever the raw value
// shows up later (another step's output), events carry it masked.
func TestSecretsFromResultsAreRedactedLater(t *testing.T) {
	h := newHarness()
	h.reg = modules.NewRegistry(secretMod{}, modules.Debug{})
	if _, err := h.run(t, header+`plays:
  - hosts: h1
    steps:
      - mint: {}
        register: m
      - debug: {msg: 'id {{ m.data.id }}'}
      - mint: {echo: true}
`, hostsInv(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, ev := range h.rec.Events() {
		s := fmt.Sprintf("%+v", ev)
		if strings.Contains(s, "0123456789abcdef") {
			t.Fatalf("secret leaked in event %s", s)
		}
		seen = seen || strings.Contains(s, "the token: "+secret.Redacted)
	}
	if !seen {
		t.Fatal("the echoed output should be there, masked")
	}
}
