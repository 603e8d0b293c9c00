package modules

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/failure"
)

// Assert fails the host unless every expression holds.
type Assert struct{}

// AssertParams are assert's parameters.
type AssertParams struct {
	That       []*eval.Expr `yaml:"that" required:"true" doc:"bare bool expressions that must all hold"`
	Msg        string       `yaml:"msg" doc:"message when an expression does not hold"`
	SuccessMsg string       `yaml:"success_msg" doc:"message when all hold"`
}

// Validate checks the parameters.
func (p *AssertParams) Validate() error {
	if len(p.That) == 0 {
		return errors.New("that: at least one expression is required")
	}
	return nil
}

func (Assert) Name() string { return "assert" }
func (Assert) Doc() string {
	return "Fail the host unless every expression in `that` holds. Changes nothing."
}
func (Assert) NewParams() Params { return &AssertParams{} }
func (Assert) LocalOnly()        {}

// Run evaluates the expressions.
func (a Assert) Run(_ context.Context, t *Target, p Params) (Result, error) {
	ap := p.(*AssertParams)
	for _, e := range ap.That {
		ok, err := t.Eval(e)
		if err != nil {
			return Result{}, err
		}
		if !ok {
			msg := ap.Msg
			if msg == "" {
				msg = fmt.Sprintf("%q is false", e.Source)
			}
			return Result{Msg: msg}, fmt.Errorf("%w: %s", failure.ErrAssertion, msg)
		}
	}
	msg := ap.SuccessMsg
	if msg == "" {
		msg = "all assertions passed"
	}
	return Result{Msg: msg}, nil
}

// Check is Run: asserting changes nothing.
func (a Assert) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return a.Run(ctx, t, p)
}
