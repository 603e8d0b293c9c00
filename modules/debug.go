package modules

import (
	"context"
	"fmt"
)

// Debug prints a message.
type Debug struct{}

// DebugParams are debug's parameters.
type DebugParams struct {
	Msg any `yaml:"msg" secrets:"display" doc:"value to print; templates are rendered (a secret prints as [REDACTED])"`
}

// Validate checks the parameters.
func (p *DebugParams) Validate() error { return nil }

func (Debug) Name() string      { return "debug" }
func (Debug) Doc() string       { return "Print a message (rendered for each host). Changes nothing." }
func (Debug) NewParams() Params { return &DebugParams{} }
func (Debug) LocalOnly()        {}

// Run returns the message.
func (Debug) Run(_ context.Context, _ *Target, p Params) (Result, error) {
	dp := p.(*DebugParams)
	msg := ""
	if dp.Msg != nil {
		msg = fmt.Sprint(dp.Msg)
	}
	return Result{Msg: msg, Data: map[string]any{"msg": dp.Msg}}, nil
}

// Check is Run.
func (d Debug) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return d.Run(ctx, t, p)
}
