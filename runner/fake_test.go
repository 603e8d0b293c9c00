package runner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
)

// fakeClock advances instantly and records every wait.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// calls records module invocations as "host:step-tag" strings.
type calls struct {
	mu  sync.Mutex
	log []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	c.log = append(c.log, s)
	c.mu.Unlock()
}

func (c *calls) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

func (c *calls) count(s string) int {
	n := 0
	for _, x := range c.all() {
		if x == s {
			n++
		}
	}
	return n
}

// fakeMod is a module whose behaviour is driven by its params.
type fakeMod struct {
	calls *calls
	name  string
	mu    *sync.Mutex
	tries map[string]int
}

type fakeParams struct {
	Tag       string   `yaml:"tag"`
	FailOn    []string `yaml:"fail_on"`
	Err       string   `yaml:"err"` // fatal, retryable, unknown
	FailTimes int      `yaml:"fail_times"`
	Changed   bool     `yaml:"changed"`
	Undo      bool     `yaml:"undo"`
	Block     bool     `yaml:"block"` // wait for ctx cancellation
	PanicOn   []string `yaml:"panic_on"`
	SlowOn    []string `yaml:"slow_on"` // hosts that take 100ms
	State     bool     `yaml:"state"`   // return typed undo state in Data
	Warn      string   `yaml:"warn"`    // a warning in the result
}

func (p *fakeParams) Validate() error {
	if p.Tag == "" {
		return fmt.Errorf("tag is required")
	}
	return nil
}

func newFake(c *calls, name string) fakeMod {
	return fakeMod{calls: c, name: name, mu: &sync.Mutex{}, tries: map[string]int{}}
}

func (m fakeMod) Name() string              { return m.name }
func (m fakeMod) Doc() string               { return "test module" }
func (m fakeMod) NewParams() modules.Params { return &fakeParams{} }

func (m fakeMod) Run(ctx context.Context, t *modules.Target, p modules.Params) (modules.Result, error) {
	fp := p.(*fakeParams)
	key := t.Host.Name + ":" + fp.Tag
	m.calls.add(key)
	if slices.Contains(fp.SlowOn, t.Host.Name) {
		time.Sleep(100 * time.Millisecond)
	}
	if slices.Contains(fp.PanicOn, t.Host.Name) {
		var m map[string]int
		m["boom"]++ // a module's nil-map bug
	}
	if fp.Block {
		<-ctx.Done()
		return modules.Result{}, ctx.Err()
	}
	m.mu.Lock()
	m.tries[key]++
	n := m.tries[key]
	m.mu.Unlock()
	if slices.Contains(fp.FailOn, t.Host.Name) && (fp.FailTimes == 0 || n <= fp.FailTimes) {
		base := fmt.Errorf("injected failure on %s", t.Host.Name)
		switch fp.Err {
		case "retryable":
			return modules.Result{}, failure.Retryable(base)
		case "unknown":
			return modules.Result{}, fmt.Errorf("%w: %w", failure.ErrUnknownOutcome, base)
		}
		return modules.Result{}, base
	}
	res := modules.Result{Changed: fp.Changed, Msg: "did " + fp.Tag, Stdout: fp.Tag}
	if fp.Warn != "" {
		res.Warnings = []string{fp.Warn + " on " + t.Host.Name}
	}
	if fp.State {
		// Go values as a module builds them, not as the journal returns them
		res.Data = map[string]any{"pods": []string{"a", "b"}, "count": 2, "by": map[string]bool{"us": true}}
	}
	return res, nil
}

func (m fakeMod) Check(_ context.Context, t *modules.Target, p modules.Params) (modules.Result, error) {
	fp := p.(*fakeParams)
	m.calls.add("check:" + t.Host.Name + ":" + fp.Tag)
	return modules.Result{Changed: fp.Changed, Msg: "would do " + fp.Tag}, nil
}

// undoMod is fakeMod with a built-in Undo. on records, per undo, the
// connection it was handed.
type undoMod struct {
	fakeMod
	on *calls
}

func (m undoMod) Undo(_ context.Context, t *modules.Target, p modules.Params, r modules.Result) error {
	m.calls.add("undo:" + t.Host.Name + ":" + p.(*fakeParams).Tag)
	if r.Data != nil {
		m.calls.add(fmt.Sprintf("state:%#v", r.Data))
	}
	if c, ok := t.Conn.(fakeConn); ok && m.on != nil {
		m.on.add(t.Host.Name + ":" + p.(*fakeParams).Tag + "@" + c.name)
	}
	return nil
}

// fakeConn satisfies modules.Conn; the fake modules never use it. Its
// name says whose connection it is ("ssh:h1", "local").
type fakeConn struct{ name string }

func (fakeConn) Exec(context.Context, modules.Cmd) (modules.ExecResult, error) {
	return modules.ExecResult{}, nil
}

type fakeConnector struct {
	mu       sync.Mutex
	connects []string
}

func (f *fakeConnector) Connect(_ context.Context, h *inventory.Host) (modules.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects = append(f.connects, h.Name)
	return fakeConn{name: "ssh:" + h.Name}, nil
}
