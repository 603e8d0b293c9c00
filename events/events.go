// Package events defines the typed events a run emits. They are the only way
// output is produced: the terminal view, the JSON stream, the log file and
// the journal all consume the same stream. The JSON form is a stable schema
// (see Schema); fields are only ever added.
package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
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
	// InventoryCheck says how the targeted hosts compared with the
	// cluster's Nodes before the run (Msg: ok, skipped, or not made).
	InventoryCheck Type = "inventory.check"
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
	// Warnings are a step's warnings on a host (host.end): what the
	// operator must know that is no failure. The recap lists them.
	Warnings []string `json:"warnings,omitempty"`
	Check    bool     `json:"check,omitempty"`
	// Result is the registered form of a step's result (for later
	// expressions after a resume); nil for no_log steps.
	Result map[string]any `json:"result,omitempty"`
	// Facts are the host facts a step set (facts, set-vars), for resume.
	Facts map[string]any `json:"facts,omitempty"`
	// Section is "" for a play's steps, or rescue, always or handler.
	Section string `json:"section,omitempty"`
	// Cut counts the bytes of output left out of this event (each text
	// keeps its last MaxText bytes).
	Cut int64 `json:"cut,omitempty"`
	// Redacted says a secret was masked in Result or Facts: what the
	// journal holds is not what later steps saw, so a resume runs the
	// step again.
	Redacted bool `json:"redacted,omitempty"`
}

// MaxText is the most of one text (a step's stdout, stderr, message, a
// string in its data) an event carries: the tail is kept, where a
// command's error usually is.
const MaxText = 64 << 10

// Tail keeps the last MaxText bytes of s, marked with how much was cut.
func Tail(s string) (string, int64) {
	if len(s) <= MaxText {
		return s, 0
	}
	cut := len(s) - MaxText
	return fmt.Sprintf("[kubeplay: %d bytes cut]\n", cut) + s[cut:], int64(cut)
}

// Bound cuts every text of e to MaxText and counts what was cut in Cut.
func (e *Event) Bound() {
	var n int64
	tail := func(v any) any {
		if s, ok := v.(string); ok {
			s, c := Tail(s)
			n += c
			return s
		}
		return v
	}
	for _, p := range []*string{&e.Msg, &e.Diff, &e.Error} {
		*p = tail(*p).(string)
	}
	e.Result = MapLeaves(e.Result, tail)
	e.Facts = MapLeaves(e.Facts, tail)
	if len(e.Warnings) > MaxWarnings {
		e.Warnings = append(e.Warnings[:MaxWarnings:MaxWarnings], fmt.Sprintf("(%d more warnings)", len(e.Warnings)-MaxWarnings))
	}
	for i := range e.Warnings {
		e.Warnings[i] = tail(e.Warnings[i]).(string)
	}
	e.Cut += n
}

// MaxWarnings is the most warnings one event carries.
const MaxWarnings = 16

// MapLeaves is a copy of m (a result or facts) with fn applied to every
// value that is not a map[string]any or an []any, at any depth. A nil map
// stays nil.
func MapLeaves(m map[string]any, fn func(any) any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = mapLeaf(v, fn)
	}
	return out
}

func mapLeaf(v any, fn func(any) any) any {
	switch x := v.(type) {
	case map[string]any:
		return MapLeaves(x, fn)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = mapLeaf(it, fn)
		}
		return out
	}
	return fn(v)
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

// Err is the first error of a sink that reports one (a journal that could
// not be written).
func (m Multi) Err() error {
	for _, s := range m {
		if es, ok := s.(interface{ Err() error }); ok {
			if err := es.Err(); err != nil {
				return err
			}
		}
	}
	return nil
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

// ErrDamaged marks a journal with an unreadable line before its end:
// neither a clean end nor a crash mid-write explains it, so what it says
// cannot be trusted for a resume.
var ErrDamaged = errors.New("journal damaged")

// maxLine bounds one journal line; events are bounded (Bound) far below.
const maxLine = 64 << 20

// ReadJournal reads a JSON-lines journal. A last line cut short by a crash
// ends it: what came before is returned, without error. An unreadable line
// with lines after it is damage: the events before it are returned with
// an error wrapping ErrDamaged that names the line.
func ReadJournal(r io.Reader) ([]Event, error) {
	var evs []Event
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF && len(b) == 0 {
			return evs, nil
		}
		if err != nil && err != io.EOF {
			return evs, fmt.Errorf("%w: line %d: %w", ErrDamaged, line, err)
		}
		var e Event
		if jerr := json.Unmarshal(b, &e); jerr != nil {
			if err == io.EOF {
				return evs, nil // the last line, cut short by a crash
			}
			if _, perr := br.Peek(1); perr == io.EOF {
				return evs, nil // likewise, with its newline written
			}
			return evs, fmt.Errorf("%w: line %d is not an event (%v); lines after it exist", ErrDamaged, line, jerr)
		}
		evs = append(evs, e)
		if err == io.EOF {
			return evs, nil
		}
	}
}

// readLine reads one line of at most maxLine bytes, without its newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > maxLine {
			return nil, fmt.Errorf("longer than %d bytes", maxLine)
		}
		switch err {
		case nil:
			return out[:len(out)-1], nil
		case bufio.ErrBufferFull:
			continue
		default:
			return out, err
		}
	}
}
