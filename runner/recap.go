package runner

import (
	"sync"
	"time"

	"github.com/kubeplay/kubeplay/events"
)

// HostRecap counts one host's step outcomes over a run.
type HostRecap struct {
	Host       string
	OK         int
	Changed    int
	Failed     int
	Skipped    int
	Unknown    int
	RolledBack int
	Rescued    int
	Duration   time.Duration
}

// Recap summarises a run per host.
type Recap struct {
	mu       sync.Mutex
	hosts    map[string]*HostRecap
	order    []string
	warnings []Warning
}

// Warning is a step's warning on a host.
type Warning struct {
	Host, Step, Msg string
}

// Warn records a step's warning on a host.
func (r *Recap) Warn(host, step, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, Warning{Host: host, Step: step, Msg: msg})
}

// Warnings lists the run's warnings in the order they came.
func (r *Recap) Warnings() []Warning {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Warning(nil), r.warnings...)
}

func newRecap() *Recap { return &Recap{hosts: map[string]*HostRecap{}} }

func (r *Recap) host(name string) *HostRecap {
	h, ok := r.hosts[name]
	if !ok {
		h = &HostRecap{Host: name}
		r.hosts[name] = h
		r.order = append(r.order, name)
	}
	return h
}

// Record counts an outcome for a host.
func (r *Recap) Record(host string, o events.Outcome, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.host(host)
	h.Duration += d
	switch o {
	case events.OK:
		h.OK++
	case events.Changed:
		h.Changed++
	case events.Failed:
		h.Failed++
	case events.Skipped:
		h.Skipped++
	case events.Unknown:
		h.Unknown++
	case events.RolledBack:
		h.RolledBack++
	}
}

// see registers hosts in the order a play lists them (inventory order),
// before any of them runs a step: the recap does not depend on which
// host's goroutine finished first.
func (r *Recap) see(hosts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range hosts {
		r.host(h)
	}
}

// ReplayRecap rebuilds a run's recap from its journal, counted as the run
// counted it (rescues are not journaled).
func ReplayRecap(evs []events.Event) *Recap {
	r := newRecap()
	for _, e := range evs {
		switch e.Type {
		case events.PlayStart:
			r.see(e.Hosts)
		case events.HostEnd:
			r.Record(e.Host, e.Outcome, e.Duration)
			for _, w := range e.Warnings {
				r.Warn(e.Host, e.Step, w)
			}
		case events.RollbackEnd:
			r.Record(e.Host, e.Outcome, 0)
		}
	}
	return r
}

func (r *Recap) rescued(host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.host(host).Rescued++
}

// Hosts returns the per-host counts in the order plays listed the hosts.
func (r *Recap) Hosts() []HostRecap {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]HostRecap, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, *r.hosts[n])
	}
	return out
}

// Totals sums the counts over all hosts.
func (r *Recap) Totals() HostRecap {
	var t HostRecap
	for _, h := range r.Hosts() {
		t.OK += h.OK
		t.Changed += h.Changed
		t.Failed += h.Failed
		t.Skipped += h.Skipped
		t.Unknown += h.Unknown
		t.RolledBack += h.RolledBack
		t.Rescued += h.Rescued
	}
	return t
}
