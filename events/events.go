// Package events defines the typed events a run emits. They are the only way
// output is produced: the terminal view, the JSON stream, the log file and
// the journal all consume the same stream. The JSON form is a stable schema
// (see Schema); fields are only ever added.
package events

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Schema is the version of the JSON event schema.
const Schema = 1

// Type names an event.
type Type string

// Event types.
const (
	RunStart      Type = "run.start"
	RunEnd        Type = "run.end"
	PlayStart     Type = "play.start"
	PlayEnd       Type = "play.end"
	BatchStart    Type = "batch.start"
	BatchEnd      Type = "batch.end"
	StepStart     Type = "step.start"
	StepEnd       Type = "step.end"
	HostStart     Type = "host.start" // a step starts on a host
	HostEnd       Type = "host.end"   // a step ended on a host, with its outcome
	Retry         Type = "retry"      // a step attempt failed and will be retried
	RollbackStart Type = "rollback.start"
	RollbackEnd   Type = "rollback.end"
	HandlerStart  Type = "handler.start"
	Lock          Type = "lock" // the cluster lock was taken, taken over or lost (Msg says which)
)

// Outcome of a step on a host.
type Outcome string

// Outcomes.
const (
	OK         Outcome = "ok"
	Changed    Outcome = "changed"
	Failed     Outcome = "failed"
	Skipped    Outcome = "skipped"
	Unknown    Outcome = "unknown"
	RolledBack Outcome = "rolled-back"
	// Interrupted ends a run stopped by a signal (run.end only).
	Interrupted Outcome = "interrupted"
)

// Event is one thing that happened in a run.
type Event struct {
	Schema   int           `json:"schema"`
	Seq      int64         `json:"seq"`
	Time     time.Time     `json:"time"`
	Type     Type          `json:"type"`
	Run      string        `json:"run,omitempty"`
	Playbook string        `json:"playbook,omitempty"`
	Play     string        `json:"play,omitempty"`
	PlayIdx  int           `json:"play_index"`
	Batch    int           `json:"batch,omitempty"`
	Step     string        `json:"step,omitempty"`
	StepIdx  int           `json:"step_index"`
	Module   string        `json:"module,omitempty"`
	Host     string        `json:"host,omitempty"`
	Hosts    []string      `json:"hosts,omitempty"`
	Outcome  Outcome       `json:"outcome,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Msg      string        `json:"msg,omitempty"`
	Diff     string        `json:"diff,omitempty"`
	Error    string        `json:"error,omitempty"`
	Check    bool          `json:"check,omitempty"`
	// Result is the registered form of a step's result (for later
	// expressions after a resume); nil for no_log steps.
	Result map[string]any `json:"result,omitempty"`
	// Facts are the host facts a step set (facts, set-vars), for resume.
	Facts map[string]any `json:"facts,omitempty"`
	// Section is "" for a play's steps, or rescue, always or handler.
	Section string `json:"section,omitempty"`
}

// Sink consumes events. Emit must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// Multi fans events out to several sinks.
type Multi []Sink

// Emit sends e to every sink.
func (m Multi) Emit(e Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

// Recorder keeps events in memory; tests use it to assert what happened.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (r *Recorder) Emit(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of the recorded events.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Filter returns the recorded events of one type.
func (r *Recorder) Filter(t Type) []Event {
	var out []Event
	for _, e := range r.Events() {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// ReadJournal reads a JSON-lines journal. A line cut short by a crash ends
// it: what came before is returned.
func ReadJournal(r io.Reader) ([]Event, error) {
	var evs []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			break
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}
