package modules

import (
	"context"
	"errors"
	"fmt"
)

// ErrDeclined is returned when the operator answers no to a pause.
var ErrDeclined = errors.New("operator declined to continue")

// Pause asks the operator to confirm before the play goes on.
type Pause struct{}

// PauseParams are pause's parameters.
type PauseParams struct {
	Prompt  string `yaml:"prompt" required:"true" doc:"question shown to the operator"`
	Default *bool  `yaml:"default" doc:"answer used when nobody can be asked (no TTY or --yes); without it such runs fail closed"`
}

// Validate checks the parameters.
func (p *PauseParams) Validate() error { return required("prompt", p.Prompt) }

func (Pause) Name() string { return "pause" }
func (Pause) Doc() string {
	return "Ask the operator to confirm on a terminal. Without a terminal (or with --yes) it uses `default`, and fails closed when none is declared."
}
func (Pause) NewParams() Params { return &PauseParams{} }
func (Pause) LocalOnly()        {}

// Run asks.
func (Pause) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	pp := p.(*PauseParams)
	if t.Prompt == nil {
		return answer(pp, false, false)
	}
	ok, interactive, err := t.Prompt.Confirm(ctx, pp.Prompt)
	if err != nil {
		return Result{}, fmt.Errorf("pause: %w", err)
	}
	return answer(pp, ok, interactive)
}

func answer(pp *PauseParams, ok, interactive bool) (Result, error) {
	if !interactive {
		if pp.Default == nil {
			return Result{}, fmt.Errorf("%w: %q needs an answer and no default is declared", ErrDeclined, pp.Prompt)
		}
		ok = *pp.Default
	}
	if !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrDeclined, pp.Prompt)
	}
	return Result{Msg: "confirmed"}, nil
}

// Check does not ask: nothing changes in check mode.
func (Pause) Check(_ context.Context, _ *Target, p Params) (Result, error) {
	return Result{Msg: "would ask: " + p.(*PauseParams).Prompt}, nil
}
