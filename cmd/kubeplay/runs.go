package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/output"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/session"
)

func newRunsCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List past runs and their state (from their journals)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listRuns(cmd.OutOrStdout(), stateDir)
		},
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", session.DefaultStateDir(), "where run directories are kept")
	show := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Print a run's timeline and recap from its journal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return showRun(cmd.OutOrStdout(), stateDir, args[0])
		},
	}
	cmd.AddCommand(show)
	return cmd
}

func listRuns(w io.Writer, stateDir string) error {
	runs, err := session.Runs(stateDir)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPLAYBOOK\tSTARTED\tDURATION\tSTATE")
	for _, r := range runs {
		state := r.State
		if r.Check {
			state += " (check)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Playbook, r.Started.Local().Format(time.DateTime), roundDuration(r.Duration), state)
	}
	return tw.Flush()
}

func showRun(w io.Writer, stateDir, id string) error {
	if filepath.Base(id) != id {
		return fmt.Errorf("%w: %q is not a run id", failure.ErrValidation, id)
	}
	dir := filepath.Join(stateDir, "runs", id)
	evs, err := session.ReadJournal(dir)
	damage := err
	if err != nil && !errors.Is(err, events.ErrDamaged) {
		return fmt.Errorf("run %s: %w", id, err)
	}
	view := output.NewText(w, false, true)
	for _, e := range evs {
		view.Emit(e)
	}
	s := session.Summarize(id, evs)
	recap := runner.ReplayRecap(evs)
	output.WriteRecap(w, recapRows(recap), recapWarnings(recap), s.Duration)
	if damage != nil {
		fmt.Fprintf(w, "state: damaged: %v (shown: what came before it; --resume refuses this run)\n", damage)
		return nil
	}
	fmt.Fprintf(w, "state: %s\n", s.State)
	if s.State == "incomplete" {
		fmt.Fprintln(w, "the journal has no end: the run was killed, or is still running")
	}
	return nil
}

// roundDuration keeps sub-second runs visible (230ms, not 0s) and longer
// ones readable (1m12s).
func roundDuration(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Second)
}
