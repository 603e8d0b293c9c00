// Package local runs commands on the runner machine itself (delegate_to:
// localhost).
package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/transport"
)

// Conn executes commands locally.
type Conn struct{}

// killGrace is how long a cancelled command's process group has after
// SIGTERM before it is killed and its pipes are closed.
const killGrace = 2 * time.Second

// Exec runs c and waits for it. A non-zero exit is reported in RC, not as an
// error; errors mean the command could not be run or was cancelled.
//
// The command runs in a process group of its own. When ctx ends (a step's
// timeout, Ctrl-C) the whole group gets SIGTERM, then SIGKILL after
// killGrace, and Exec returns at once with an unknown outcome: the command
// may have had part of its effect.
func (Conn) Exec(ctx context.Context, c transport.Cmd) (transport.ExecResult, error) {
	var cmd *exec.Cmd
	switch {
	case c.Shell != "":
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", c.Shell)
	case len(c.Argv) > 0:
		cmd = exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	default:
		return transport.ExecResult{}, errors.New("empty command")
	}
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = os.Environ()
		for k, v := range c.Env {
			cmd.Env = append(cmd.Env, k+"="+v.Reveal())
		}
	}
	cmd.Stdin = c.Stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = killGrace
	err := cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		// a cancelled step leaves nothing of its group behind (a child
		// that ignored SIGTERM); a finished one keeps its background jobs
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	res := transport.ExecResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case (err == nil || errors.Is(err, exec.ErrWaitDelay)) && ctx.Err() == nil:
		// ErrWaitDelay: it exited 0 and a background job kept its output
		// open; what it printed until killGrace is kept
	case ctx.Err() != nil && cmd.Process != nil:
		return res, fmt.Errorf("%w: %s interrupted: %w", failure.ErrUnknownOutcome, c.String(), ctx.Err())
	case ctx.Err() != nil:
		return res, fmt.Errorf("run %s: %w", c.String(), ctx.Err())
	case errors.As(err, &ee):
		res.RC = ee.ExitCode()
	default:
		return res, fmt.Errorf("run %s: %w", c.String(), err)
	}
	return res, nil
}

// DialContext opens a TCP connection from the runner machine.
func (Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// ReadFile reads a local file.
func (Conn) ReadFile(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(path)
}
