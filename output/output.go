// Package output renders run events for people (plain lines, coloured on a
// terminal, with a final recap) and for machines (one JSON event per line).
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kubeplay/kubeplay/events"
)

// JSON writes one event per line. When the writer can Sync (a journal
// file), it is synced at every step, rollback and run boundary, so that a
// run killed at any point leaves a journal that ends at a whole step. The
// first encode, write or sync error is kept (Err): the runner stops at the
// next step boundary rather than go on with a journal that lost events.
type JSON struct {
	mu   sync.Mutex
	enc  *json.Encoder
	sync interface{ Sync() error }
	err  error
}

// Err is the first error writing the stream, if any.
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// NewJSON returns a JSON-lines sink.
func NewJSON(w io.Writer) *JSON {
	j := &JSON{enc: json.NewEncoder(w)}
	j.sync, _ = w.(interface{ Sync() error })
	return j
}

// Emit writes e.
func (j *JSON) Emit(e events.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.enc.Encode(e); err != nil && j.err == nil {
		j.err = fmt.Errorf("write event %s (seq %d): %w", e.Type, e.Seq, err)
	}
	if j.sync == nil {
		return
	}
	switch e.Type {
	case events.StepEnd, events.RollbackEnd, events.RunEnd, events.Lock:
		if err := j.sync.Sync(); err != nil && j.err == nil {
			j.err = fmt.Errorf("sync events: %w", err)
		}
	}
}

// Text writes human-readable progress lines.
type Text struct {
	mu      sync.Mutex
	w       io.Writer
	color   bool
	verbose bool
}

// NewText returns a text sink; color adds ANSI colours (terminals only).
func NewText(w io.Writer, color, verbose bool) *Text {
	return &Text{w: w, color: color, verbose: verbose}
}

const (
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	red    = "\x1b[31m"
	cyan   = "\x1b[36m"
	grey   = "\x1b[90m"
	reset  = "\x1b[0m"
)

func (t *Text) paint(c, s string) string {
	if !t.color {
		return s
	}
	return c + s + reset
}

func outcomeColor(o events.Outcome) string {
	switch o {
	case events.OK:
		return green
	case events.Changed:
		return yellow
	case events.Failed, events.Unknown:
		return red
	case events.RolledBack:
		return cyan
	}
	return grey
}

// Emit renders e.
func (t *Text) Emit(e events.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Type {
	case events.RunStart:
		mode := ""
		if e.Check {
			mode = " (check mode: nothing will change)"
		}
		if e.Msg != "" {
			mode += " (" + e.Msg + ")"
		}
		fmt.Fprintf(t.w, "RUN %s [%s]%s\n", e.Playbook, e.Run, mode)
	case events.PlayStart:
		fmt.Fprintf(t.w, "\nPLAY [%s] %s\n", e.Play, strings.Join(e.Hosts, ", "))
	case events.PlayEnd:
		if e.Msg != "" {
			fmt.Fprintf(t.w, "  %s\n", t.paint(grey, e.Msg))
		}
	case events.BatchStart:
		fmt.Fprintf(t.w, "BATCH %d: %s\n", e.Batch, strings.Join(e.Hosts, ", "))
	case events.StepStart:
		fmt.Fprintf(t.w, "STEP [%s] (%s)\n", e.Step, e.Module)
	case events.HandlerStart:
		fmt.Fprintf(t.w, "HANDLER [%s] %s\n", e.Step, strings.Join(e.Hosts, ", "))
	case events.HostEnd:
		line := fmt.Sprintf("  %-10s %s", t.paint(outcomeColor(e.Outcome), string(e.Outcome)+":"), e.Host)
		if e.Duration >= time.Second {
			line += t.paint(grey, fmt.Sprintf(" (%s)", e.Duration.Round(100*time.Millisecond)))
		}
		if e.Msg != "" && e.Error == "" && (t.verbose || e.Outcome != events.OK || e.Module == "debug") {
			line += " " + firstLine(e.Msg)
		}
		if e.Error != "" {
			line += " " + t.paint(red, e.Error)
		}
		fmt.Fprintln(t.w, line)
		if e.Diff != "" {
			fmt.Fprintln(t.w, indent(e.Diff, "    "))
		}
	case events.Lock, events.InventoryCheck:
		fmt.Fprintf(t.w, "%s\n", e.Msg)
	case events.Retry:
		fmt.Fprintf(t.w, "  %-10s %s %s: %s\n", t.paint(yellow, "retrying:"), e.Host, e.Msg, e.Error)
	case events.RollbackEnd:
		msg := ""
		if e.Error != "" {
			msg = " " + t.paint(red, e.Error)
		}
		did := "undid"
		if e.Outcome != events.RolledBack {
			did = "could not undo"
		}
		fmt.Fprintf(t.w, "  %-10s %s %s [%s]%s\n", t.paint(outcomeColor(e.Outcome), "rollback:"), e.Host, did, e.Step, msg)
	case events.RunEnd:
		if e.Error != "" {
			fmt.Fprintf(t.w, "\n%s %s\n", t.paint(red, "FAILED:"), e.Error)
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n")
}

// RecapRow is one host's line of the recap.
type RecapRow struct {
	Host                                                       string
	OK, Changed, Failed, Skipped, Unknown, RolledBack, Rescued int
	Duration                                                   time.Duration
}

// WriteRecap prints the PLAY RECAP table.
func WriteRecap(w io.Writer, rows []RecapRow, warnings []string, total time.Duration) {
	fmt.Fprintln(w, "\nPLAY RECAP")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tOK\tCHANGED\tFAILED\tSKIPPED\tUNKNOWN\tROLLED-BACK\tRESCUED\tTIME")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Host, r.OK, r.Changed, r.Failed, r.Skipped,
			r.Unknown, r.RolledBack, r.Rescued, r.Duration.Round(10*time.Millisecond))
	}
	tw.Flush()
	if len(warnings) > 0 {
		fmt.Fprintln(w, "\nWARNINGS")
		for _, m := range warnings {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	fmt.Fprintf(w, "total %s\n", total.Round(10*time.Millisecond))
}
