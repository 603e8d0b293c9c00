// Package failure is kubeplay's error taxonomy: sentinels and wrappers that
// classify errors for retry decisions and exit codes. Classification is done
// with errors.Is/As, never by matching message text.
package failure

import (
	"errors"
	"fmt"
)

// Exit codes of the kubeplay CLI.
const (
	ExitOK          = 0
	ExitError       = 1 // unexpected internal error
	ExitValidation  = 2 // playbook, inventory or parameter validation failed; nothing was touched
	ExitHostFailed  = 3 // at least one host failed a step beyond the play's tolerance
	ExitLockHeld    = 4 // another run holds the cluster lock
	ExitNoCluster   = 5 // the cluster's API could not be read (inventory check, from-cluster)
	ExitInterrupted = 130
)

var (
	// ErrValidation marks errors found before any host is touched.
	ErrValidation = errors.New("validation failed")
	// ErrUnknownOutcome marks a step whose effect on the host is not known,
	// for example because the connection dropped while a command ran. Such a
	// step is never re-run blindly.
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrInterrupted marks a run stopped by a signal.
	ErrInterrupted = errors.New("interrupted")
	// ErrLockHeld marks a run refused because another run holds the lock.
	ErrLockHeld = errors.New("cluster lock held")
	// ErrNoCluster: a command that must read the cluster's API could not
	// (no kubeconfig, or the API server did not answer).
	ErrNoCluster = errors.New("no cluster access")
	// ErrAbort stops a retry loop at once, whatever the remaining attempts.
	ErrAbort = errors.New("aborted")
	// ErrAssertion marks an assert step whose condition did not hold.
	ErrAssertion = errors.New("assertion failed")
	// ErrModulePanic marks a module that panicked: its host fails, the
	// others go on.
	ErrModulePanic = errors.New("module panicked")
	// ErrInternal marks a defect of kubeplay's engine itself.
	ErrInternal = errors.New("internal error")
	// ErrJournal marks a run stopped because its journal could not be
	// written: a resume could not trust it.
	ErrJournal = errors.New("journal not written")
)

// retryable wraps an error that a retry may cure (network blips, 5xx, 429).
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// Retryable marks err as safe to retry. Nil stays nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryable{err: err}
}

// IsRetryable reports whether err (or anything it wraps) was marked retryable
// and not also marked as an abort or an unknown outcome.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrAbort) || errors.Is(err, ErrUnknownOutcome) {
		return false
	}
	var r *retryable
	return errors.As(err, &r)
}

// HostError is a failure attributed to one host.
type HostError struct {
	Host string
	Step string
	Err  error
}

func (e *HostError) Error() string {
	return fmt.Sprintf("host %s: step %q: %v", e.Host, e.Step, e.Err)
}
func (e *HostError) Unwrap() error { return e.Err }

// RunError aggregates the hosts that failed a run.
type RunError struct {
	Play   string
	Hosts  []*HostError
	Reason string // e.g. "max_fail_percentage 0 exceeded"
}

func (e *RunError) Error() string {
	names := make([]string, 0, len(e.Hosts))
	for _, h := range e.Hosts {
		names = append(names, h.Host)
	}
	msg := fmt.Sprintf("play %q failed on %d host(s) %v", e.Play, len(e.Hosts), names)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	for _, h := range e.Hosts {
		msg += "\n  " + h.Error()
	}
	return msg
}

// Unwrap exposes every host error to errors.Is/As.
func (e *RunError) Unwrap() []error {
	out := make([]error, 0, len(e.Hosts))
	for _, h := range e.Hosts {
		out = append(out, h)
	}
	return out
}

// ExitCode maps an error to the CLI exit code. A RunError means steps ran:
// it is never ExitValidation ("nothing was touched"), even when a host
// failed on a parameter that only the run could check.
func ExitCode(err error) int {
	var re *RunError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, ErrLockHeld):
		return ExitLockHeld
	case errors.Is(err, ErrNoCluster):
		return ExitNoCluster
	case errors.Is(err, ErrInternal), errors.Is(err, ErrJournal):
		return ExitError
	case errors.As(err, &re):
		return ExitHostFailed
	case errors.Is(err, ErrValidation):
		return ExitValidation
	default:
		return ExitError
	}
}
