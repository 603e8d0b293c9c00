package session

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/kubeplay/kubeplay/events"
)

// Summary is what a run's journal says about it.
type Summary struct {
	ID       string
	Playbook string
	Started  time.Time
	Duration time.Duration
	State    string // ok, failed, interrupted, or incomplete (no end: killed, or still running)
	Check    bool
	Error    string
}

// RunsDir is where the run directories under a state directory are.
func RunsDir(stateDir string) string { return filepath.Join(stateDir, "runs") }

// ReadJournal reads the events of the run directory dir.
func ReadJournal(dir string) ([]events.Event, error) {
	f, err := os.Open(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return events.ReadJournal(f)
}

// Summarize says what a run's events tell of it.
func Summarize(id string, evs []events.Event) Summary {
	s := Summary{ID: id, State: "incomplete"}
	for _, e := range evs {
		switch e.Type {
		case events.RunStart:
			s.Playbook, s.Started, s.Check = e.Playbook, e.Time, e.Check
		case events.RunEnd:
			s.Duration, s.State, s.Error = e.Duration, string(e.Outcome), e.Error
		}
	}
	if s.State == "incomplete" && len(evs) > 0 {
		s.Duration = evs[len(evs)-1].Time.Sub(s.Started)
	}
	return s
}

// Runs summarizes every run under stateDir, oldest first. A run whose
// journal is damaged is listed with state "damaged"; a directory without a
// journal is not a run.
func Runs(stateDir string) ([]Summary, error) {
	ents, err := os.ReadDir(RunsDir(stateDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var runs []Summary
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		evs, err := ReadJournal(filepath.Join(RunsDir(stateDir), e.Name()))
		if err != nil && !errors.Is(err, events.ErrDamaged) {
			continue
		}
		s := Summarize(e.Name(), evs)
		if err != nil {
			s.State = "damaged"
		}
		runs = append(runs, s)
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].Started.Equal(runs[j].Started) {
			return runs[i].Started.Before(runs[j].Started)
		}
		return runs[i].ID < runs[j].ID
	})
	return runs, nil
}
