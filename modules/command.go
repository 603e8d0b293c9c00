package modules

import (
	"context"
	"errors"
)

// Command runs a program with arguments, without a shell.
type Command struct{}

// CommandParams are command's parameters.
type CommandParams struct {
	Argv        []string `yaml:"argv" required:"true" doc:"program and arguments; no shell is involved"`
	execOptions `yaml:",inline"`
}

// Validate checks the parameters.
func (p *CommandParams) Validate() error {
	if len(p.Argv) == 0 || p.Argv[0] == "" {
		return errors.New("argv is required")
	}
	return nil
}

func (Command) Name() string { return "command" }
func (Command) Doc() string {
	return "Run a program with arguments (no shell). Reports changed when it ran; creates/removes make it idempotent."
}
func (Command) NewParams() Params { return &CommandParams{} }

// Run executes the command.
func (Command) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	cp := p.(*CommandParams)
	return cp.run(ctx, t, Cmd{Argv: cp.Argv})
}

// Check reports whether the command would run.
func (c Command) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return c.Run(ctx, t, p)
}
