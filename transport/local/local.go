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

	"github.com/kubeplay/kubeplay/modules"
)

// Conn executes commands locally.
type Conn struct{}

// Exec runs c and waits for it. A non-zero exit is reported in RC, not as an
// error; errors mean the command could not be run or was cancelled.
func (Conn) Exec(ctx context.Context, c modules.Cmd) (modules.ExecResult, error) {
	var cmd *exec.Cmd
	switch {
	case c.Shell != "":
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", c.Shell)
	case len(c.Argv) > 0:
		cmd = exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	default:
		return modules.ExecResult{}, errors.New("empty command")
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
	err := cmd.Run()
	res := modules.ExecResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
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
