package modules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kubeplay/kubeplay/secret"
)

// ErrCommandFailed marks a command that exited with an unexpected code.
var ErrCommandFailed = errors.New("command failed")

// execOptions are the options command and shell share.
type execOptions struct {
	Creates  string                   `yaml:"creates" doc:"skip when this path exists on the host"`
	Removes  string                   `yaml:"removes" doc:"skip unless this path exists on the host"`
	Chdir    string                   `yaml:"chdir" doc:"working directory"`
	Env      map[string]secret.String `yaml:"env" doc:"environment variables (may hold secrets; never put on the command line)"`
	Stdin    secret.String            `yaml:"stdin" doc:"data for standard input (may hold secrets)"`
	ExpectRC []int                    `yaml:"expect_rc" doc:"exit codes that count as success (default [0])"`
}

// skip reports whether creates/removes make the command unnecessary.
func (o *execOptions) skip(ctx context.Context, c Conn) (string, error) {
	exists := func(path string) (bool, error) {
		r, err := c.Exec(ctx, Cmd{Argv: []string{"test", "-e", path}})
		if err != nil {
			return false, fmt.Errorf("test %s: %w", path, err)
		}
		return r.RC == 0, nil
	}
	if o.Creates != "" {
		ok, err := exists(o.Creates)
		if err != nil || ok {
			return o.Creates + " exists", err
		}
	}
	if o.Removes != "" {
		ok, err := exists(o.Removes)
		if err != nil || !ok {
			return o.Removes + " does not exist", err
		}
	}
	return "", nil
}

// run executes c with the shared options, in check mode only probing.
func (o *execOptions) run(ctx context.Context, t *Target, c Cmd) (Result, error) {
	if t.Conn == nil {
		return Result{}, errors.New("no connection to the host")
	}
	why, err := o.skip(ctx, t.Conn)
	if err != nil {
		return Result{}, err
	}
	if why != "" {
		return Result{Msg: "skipped: " + why}, nil
	}
	if t.Check {
		return Result{Changed: true, Msg: "would run: " + c.String()}, nil
	}
	c.Dir = o.Chdir
	c.Env = o.Env
	if v := o.Stdin.Reveal(); v != "" {
		c.Stdin = strings.NewReader(v)
	}
	r, err := t.Conn.Exec(ctx, c)
	if err != nil {
		return Result{}, err
	}
	res := Result{Changed: true, Stdout: r.Stdout, Stderr: r.Stderr, RC: r.RC}
	expect := o.ExpectRC
	if len(expect) == 0 {
		expect = []int{0}
	}
	if !slices.Contains(expect, r.RC) {
		return res, fmt.Errorf("%w: exit code %d: %s", ErrCommandFailed, r.RC, lastLine(r.Stderr, r.Stdout))
	}
	return res, nil
}

func lastLine(texts ...string) string {
	for _, t := range texts {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		lines := strings.Split(t, "\n")
		return lines[len(lines)-1]
	}
	return "(no output)"
}
