package modules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kubeplay/kubeplay/eval"
)

// Wait waits for a duration, or until an expression holds.
type Wait struct{}

// WaitParams are wait's parameters.
type WaitParams struct {
	For      time.Duration `yaml:"for" doc:"wait this long"`
	Until    *eval.Expr    `yaml:"until" doc:"bare expression; wait until it holds"`
	Timeout  time.Duration `yaml:"timeout" default:"5m" doc:"give up after this long (with until)"`
	Interval time.Duration `yaml:"interval" default:"2s" doc:"how often to evaluate until"`
}

// Validate checks the parameters.
func (p *WaitParams) Validate() error {
	if (p.For > 0) == (p.Until != nil) {
		return errors.New("exactly one of for and until is required")
	}
	if p.For < 0 {
		return errors.New("for must be positive")
	}
	return positive(p.Timeout, p.Interval)
}

func (Wait) Name() string { return "wait" }
func (Wait) Doc() string {
	return "Wait for a fixed duration, or poll a bare expression until it holds (bounded by timeout)."
}
func (Wait) NewParams() Params { return &WaitParams{} }
func (Wait) LocalOnly()        {}

// Run waits.
func (Wait) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	wp := p.(*WaitParams)
	if wp.Until == nil {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-t.Clock.After(wp.For):
			return Result{Msg: fmt.Sprintf("waited %s", wp.For)}, nil
		}
	}
	err := poll(ctx, t.Clock, pollSpec{Timeout: wp.Timeout, Interval: wp.Interval}, func(context.Context) (bool, string, error) {
		ok, err := t.Eval(wp.Until)
		return ok, "", err
	})
	if err != nil {
		return Result{}, expired(err, func(nd *NotDone) error {
			return fmt.Errorf("%q still false after %s", wp.Until.Source, nd.After)
		})
	}
	return Result{Msg: fmt.Sprintf("%q holds", wp.Until.Source)}, nil
}

// Check skips the wait: nothing would change.
func (Wait) Check(_ context.Context, _ *Target, p Params) (Result, error) {
	return Result{Msg: "would wait"}, nil
}
