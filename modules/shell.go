package modules

import (
	"context"
)

// Shell runs a command line through /bin/sh.
type Shell struct{}

// ShellParams are shell's parameters.
type ShellParams struct {
	Cmd         string `yaml:"cmd" required:"true" doc:"command line for /bin/sh -c; secrets must go through env or stdin"`
	execOptions `yaml:",inline"`
}

// Validate checks the parameters.
func (p *ShellParams) Validate() error { return required("cmd", p.Cmd) }

func (Shell) Name() string { return "shell" }
func (Shell) Doc() string {
	return "Run a command line through /bin/sh -c. Reports changed when it ran; creates/removes make it idempotent."
}
func (Shell) NewParams() Params { return &ShellParams{} }

// Run executes the command line.
func (Shell) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	sp := p.(*ShellParams)
	return sp.run(ctx, t, Cmd{Shell: sp.Cmd})
}

// Check reports whether the command would run.
func (s Shell) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return s.Run(ctx, t, p)
}
