package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/internal/tty"
	"github.com/kubeplay/kubeplay/output"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/session"
)

type runFlags struct {
	accessFlags
	inventory   string
	limit       string
	roles       []string
	extra       []string
	check       bool
	diff        bool
	forks       int
	tags        []string
	skipTags    []string
	startAt     string
	verbose     bool
	output      string
	yes         bool
	stateDir    string
	rollbackTTL time.Duration
	resume      string
	breakLock   bool
	noLock      bool
	noInvCheck  bool
	lockTTL     time.Duration
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run PLAYBOOK|BUNDLED_NAME",
		Short: "Run a playbook (or continue a failed one with --resume RUN_ID)",
		Args:  cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			} else if f.resume == "" {
				return fmt.Errorf("%w: run needs a playbook (or --resume RUN_ID)", failure.ErrValidation)
			}
			return runPlaybook(cmd.Context(), f, ref, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.inventory, "inventory", "i", os.Getenv("KUBEPLAY_INVENTORY"), "inventory file (kubeplay YAML, Ansible INI or YAML; default $KUBEPLAY_INVENTORY)")
	fl.StringVarP(&f.limit, "limit", "l", "", "further limit hosts with a pattern")
	roleFlag(fl, &f.roles)
	fl.StringArrayVarP(&f.extra, "extra", "e", nil, "param or extra var: key=value or @file.yaml (repeatable)")
	fl.BoolVar(&f.check, "check", false, "check mode: predict changes, change nothing")
	fl.BoolVar(&f.diff, "diff", false, "show file and object diffs")
	fl.IntVar(&f.forks, "forks", 5, "hosts worked on at once within a step")
	fl.StringSliceVar(&f.tags, "tags", nil, "only run steps with these tags")
	fl.StringSliceVar(&f.skipTags, "skip-tags", nil, "skip steps with these tags")
	fl.StringVar(&f.startAt, "start-at-step", "", "skip steps before the first step with this name")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print every step's message")
	fl.StringVar(&f.output, "output", "text", "output format: text or json")
	fl.BoolVar(&f.yes, "yes", false, "never prompt (pause steps use their declared default, or fail)")
	fl.StringVar(&f.stateDir, "state-dir", session.DefaultStateDir(), "where run directories (events, logs) are kept")
	fl.DurationVar(&f.rollbackTTL, "rollback-timeout", 10*time.Minute, "bound on each host's rollback after a failure or interrupt")
	fl.StringVar(&f.resume, "resume", "", "continue a failed, interrupted or killed run: steps it finished are not run again (same playbook, inventory and params, or a refusal saying what changed)")
	fl.BoolVar(&f.breakLock, "break-lock", false, "take over the cluster lock of a run whose heartbeat stopped (the takeover is recorded)")
	fl.BoolVar(&f.noLock, "no-lock", false, "do not take the cluster lock (kube-system/kubeplay-lock); for playbooks that never touch the cluster")
	fl.DurationVar(&f.lockTTL, "lock-ttl", 60*time.Second, "how long the cluster lock outlives its last heartbeat")
	fl.BoolVar(&f.noInvCheck, "skip-inventory-check", false, "do not compare the targeted hosts with the cluster's Nodes before the run (the run records that the check was skipped)")
	f.accessFlags.add(fl)
	return cmd
}

func runPlaybook(ctx context.Context, f *runFlags, ref string, stdout io.Writer) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("%w: --output must be text or json, got %q", failure.ErrValidation, f.output)
	}
	kube, sshOpts, err := f.options()
	if err != nil {
		return err
	}
	var view events.Sink = output.NewText(stdout, tty.IsTerminal(os.Stdout), f.verbose)
	if f.output == "json" {
		view = output.NewJSON(stdout)
	}
	res, err := session.Run(ctx, session.Options{
		Playbook: ref, Inventory: f.inventory, Extra: f.extra, Limit: f.limit, Roles: f.roles, Tags: f.tags, SkipTags: f.skipTags,
		StartAt: f.startAt, Check: f.check, Diff: f.diff, Forks: f.forks, Resume: f.resume, StateDir: f.stateDir,
		RollbackTimeout: f.rollbackTTL, SkipInventoryCheck: f.noInvCheck,
		Lock: session.LockOptions{Skip: f.noLock, Break: f.breakLock, TTL: f.lockTTL},
		Kube: kube, SSH: sshOpts, View: view, Prompt: tty.Prompter{Yes: f.yes},
	})
	if res != nil && res.Recap != nil && f.output == "text" {
		output.WriteRecap(stdout, recapRows(res.Recap), recapWarnings(res.Recap), res.Took)
		fmt.Fprintf(stdout, "run %s: events and log in %s\n", res.RunID, res.Dir)
	}
	return err
}

// recapWarnings are a recap's warnings as the PLAY RECAP prints them.
func recapWarnings(r *runner.Recap) []string {
	var out []string
	for _, w := range r.Warnings() {
		out = append(out, fmt.Sprintf("%s [%s]: %s", w.Host, w.Step, w.Msg))
	}
	return out
}

// recapRows is a recap as the PLAY RECAP table prints it.
func recapRows(r *runner.Recap) []output.RecapRow {
	var rows []output.RecapRow
	for _, h := range r.Hosts() {
		rows = append(rows, output.RecapRow(h))
	}
	return rows
}
