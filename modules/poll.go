package modules

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// pollSpec bounds a poll: the whole wait, the pause between looks, and
// optionally a bound per look and a backoff.
type pollSpec struct {
	Timeout  time.Duration // the whole wait, from the first look
	Interval time.Duration // the pause between looks (the first one, with MaxInterval)
	// MaxInterval, when set, doubles the pause after each look up to it.
	MaxInterval time.Duration
	// Look, when set, bounds each look with its own timeout.
	Look time.Duration
	// PauseFirst pauses one interval before the first look.
	PauseFirst bool
}

// NotDone is the error of a poll whose time ran out: Reason is what the
// last look said was still missing. Callers wrap it with their own words.
type NotDone struct {
	After  time.Duration
	Reason string
}

func (e *NotDone) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("not done after %s", e.After)
	}
	return fmt.Sprintf("not done after %s: %s", e.After, e.Reason)
}

// expired puts a NotDone in the caller's words; any other error (a look's,
// or the context's) passes as it is.
func expired(err error, words func(nd *NotDone) error) error {
	var nd *NotDone
	if errors.As(err, &nd) {
		return words(nd)
	}
	return err
}

// poll calls look until it reports done, on the injected clock, bounded by
// the spec's timeout (a *NotDone with the last look's reason) and by ctx.
// An error from look ends the poll with that error.
func poll(ctx context.Context, clock Clock, s pollSpec, look func(context.Context) (done bool, why string, err error)) error {
	deadline := clock.Now().Add(s.Timeout)
	pause := s.Interval
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clock.After(pause):
		}
		if s.MaxInterval > 0 {
			pause = min(2*pause, s.MaxInterval)
		}
		return nil
	}
	if s.PauseFirst {
		if err := wait(); err != nil {
			return err
		}
	}
	for {
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if s.Look > 0 {
			lctx, cancel = context.WithTimeout(ctx, s.Look)
		}
		done, why, err := look(lctx)
		cancel()
		if err != nil || done {
			return err
		}
		if !clock.Now().Before(deadline) {
			return &NotDone{After: s.Timeout, Reason: why}
		}
		if err := wait(); err != nil {
			return err
		}
	}
}
