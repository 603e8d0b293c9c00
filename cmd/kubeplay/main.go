// Command kubeplay runs YAML playbooks of typed steps against kubeadm
// clusters: over SSH on nodes, against the Kubernetes API and etcd.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/internal/diag"
)

func main() {
	defer func() {
		// a defect of kubeplay's own: exit 1 (Go's default for a panic is
		// 2, which means "nothing was touched")
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "internal error: %v\n%s", r, debug.Stack())
			os.Exit(failure.ExitError)
		}
	}()
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\n%s: stopping: no new steps; rolling back in-flight hosts (signal again to exit at once)\n", sig)
		cancel(fmt.Errorf("%w by %s", failure.ErrInterrupted, sig))
		<-sigs
		fmt.Fprintln(os.Stderr, "second signal: exiting now")
		os.Exit(failure.ExitInterrupted)
	}()
	root := newRoot()
	err := root.ExecuteContext(ctx)
	if err != nil {
		var de *diag.Error
		if errors.As(err, &de) {
			fmt.Fprintln(os.Stderr, de.Error())
		} else {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
	}
	os.Exit(failure.ExitCode(err))
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubeplay",
		Short: "Run kubeadm cluster runbooks as typed, validated playbooks",
		Long: `kubeplay runs YAML playbooks of typed steps (drain, apt-pin, etcd-member-replace, ...)
against the hosts of an inventory, with retries, rollback hooks and a full event log.

Exit codes: 0 ok, 1 internal error, 2 validation error (nothing was touched),
3 a host failed, 4 the cluster lock is held, 5 the cluster could not be read,
130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newRunsCmd(), newValidateCmd(), newPlanCmd(), newPlaybooksCmd(), newShowCmd(),
		newInventoryCmd(), newModulesCmd(), newDocCmd(), newVersionCmd(), newSchemaCmd())
	root.AddCommand(newGenDocsCmd(root))
	// --version prints the same first line as `kubeplay version`
	v := buildVersion(debug.ReadBuildInfo())
	root.Version = fmt.Sprintf("%s (commit %s)", v.Version, v.Commit)
	root.SetVersionTemplate("kubeplay {{.Version}}\n")
	return root
}
