package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
)

// noLogError hides a no_log step's error text wherever it is printed (the
// terminal, events, the log, run.end and the final error line); errors.Is
// and errors.As still see what it wraps.
type noLogError struct{ err error }

func (e noLogError) Error() string { return "step failed (details hidden by no_log)" }
func (e noLogError) Unwrap() error { return e.err }

// errUntil marks an attempt whose until condition did not hold yet.
var errUntil = errors.New("until condition not met")

// DefaultRetryDelay is the delay between attempts when a step sets retries
// but no delay.
const DefaultRetryDelay = 5 * time.Second

// runStep runs one step on one host, records its outcome and, on failure,
// unwinds the host's rollback stack.
func (e *engine) runStep(ctx context.Context, sc *scope, part string, si int, step *playbook.Step, hs *hostState) {
	name := hs.host.Name
	ev := events.Event{Play: sc.play.Name, PlayIdx: sc.pi, Batch: sc.batch, Step: step.Title(), StepIdx: si,
		Module: step.Module.Name(), Host: name, Check: e.opts.Check, Section: part}
	log := e.opts.Log.With(zap.String("play", sc.play.Name), zap.String("step", step.Title()), zap.String("host", name))
	start := e.opts.Clock.Now()
	ev.Type = events.HostStart
	e.touched.Store(true)
	e.emit(ev)

	var outcome events.Outcome
	var res modules.Result
	var err error
	handled := false
	if part == "" && e.opts.Resume != nil {
		outcome, res, err, handled = e.resumeStep(ctx, sc, si, step, hs, log)
	}
	if !handled {
		outcome, res, err = e.execute(ctx, sc, si, step, hs, log)
	}
	if err != nil && step.NoLog {
		err = noLogError{err}
	}
	ev.Type, ev.Outcome, ev.Duration = events.HostEnd, outcome, e.opts.Clock.Now().Sub(start)
	if step.NoLog {
		ev.Msg = "(output hidden by no_log)"
	} else {
		ev.Msg = res.Msg
		if e.opts.Diff {
			ev.Diff = res.Diff
		}
		// the journal keeps what later steps (and a resumed run) need
		if step.Register != "" {
			ev.Result = registeredMap(hs.registered[step.Register])
		} else if outcome == events.OK || outcome == events.Changed {
			ev.Result = registeredMap(eval.Registered{Ran: true, Changed: res.Changed, RC: res.RC,
				Stdout: res.Stdout, Stderr: res.Stderr, Msg: res.Msg, Data: res.Data})
		}
		if len(res.Vars) > 0 {
			ev.Facts = res.Vars
		}
	}
	// warnings show even with no_log: they say what the operator must
	// know, never a command's output
	if len(res.Warnings) > 0 {
		ev.Warnings = res.Warnings
		for _, w := range res.Warnings {
			e.recap.Warn(name, step.Title(), e.opts.Redactor.Redact(w))
		}
	}
	if err != nil {
		ev.Error = err.Error()
	}
	e.emit(ev)
	e.recap.Record(name, outcome, ev.Duration)
	if err != nil {
		log.Info("step failed", zap.String("outcome", string(outcome)), zap.String("error", ev.Error))
	}

	if outcome == events.Failed || outcome == events.Unknown {
		if step.IgnoreErrors && outcome == events.Failed {
			return
		}
		hs.failErr, hs.failStep = err, step.Title()
		if hs.rescuing {
			hs.rescueFailed = true
			return
		}
		hs.failed = true
		e.rollback(ctx, sc, hs)
	}
}

// execute evaluates when, decodes params, and runs the module with retries.
func (e *engine) execute(ctx context.Context, sc *scope, si int, step *playbook.Step, hs *hostState, log *zap.Logger) (events.Outcome, modules.Result, error) {
	env, err := e.env(hs)
	if err != nil {
		return events.Failed, modules.Result{}, err
	}
	if step.When != nil {
		ok, err := step.When.EvalBool(env)
		if err != nil {
			return events.Failed, modules.Result{}, err
		}
		if !ok {
			if step.Register != "" {
				hs.setRegistered(step.Register, eval.Registered{Skipped: true})
			}
			return events.Skipped, modules.Result{Msg: "when: " + step.When.Source + " is false"}, nil
		}
	}
	params, err := step.DecodeParams(env)
	if err != nil {
		return events.Failed, modules.Result{}, err
	}
	check := e.opts.Check
	if step.CheckMode != nil {
		check = *step.CheckMode
	}
	target := e.target(hs, check, log)
	checker, canCheck := step.Module.(modules.Checker)
	if check && !canCheck {
		return events.Skipped, modules.Result{Msg: "module has no check mode"}, nil
	}
	if target.Conn, err = e.stepConn(ctx, step, hs); err != nil {
		return events.Failed, modules.Result{}, err
	}

	call := step.Module.Run
	if check {
		call = checker.Check
	}
	res, err := e.attempts(ctx, sc, si, step, hs, log, func(ctx context.Context) (modules.Result, error) { return call(ctx, target, params) })
	if err != nil {
		if errors.Is(err, failure.ErrUnknownOutcome) {
			return events.Unknown, res, err
		}
		return events.Failed, res, err
	}
	e.record(step, si, hs, check, params, res)
	if res.Changed {
		return events.Changed, res, nil
	}
	return events.OK, res, nil
}

// attempts calls the module (call) with the step's retries: each attempt
// bounded by the step's timeout, concluded (register, until, changed_when,
// failed_when), and retried after a backoff only when its error is
// retryable or until did not hold yet.
func (e *engine) attempts(ctx context.Context, sc *scope, si int, step *playbook.Step, hs *hostState, log *zap.Logger, call func(context.Context) (modules.Result, error)) (modules.Result, error) {
	delay := step.Delay
	if delay == 0 && step.Retries > 0 {
		delay = DefaultRetryDelay
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if step.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, step.Timeout)
		}
		res, err := guard(log, step.Module.Name(), func() (modules.Result, error) { return call(actx) })
		cancel()
		if err != nil && step.Timeout > 0 && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", step.Timeout, err)
		}
		err = e.conclude(step, hs, &res, err)
		if err == nil || attempt > step.Retries || ctx.Err() != nil || !(failure.IsRetryable(err) || errors.Is(err, errUntil)) {
			return res, err
		}
		wait := backoff(delay, step.Backoff, attempt)
		shown := err
		if step.NoLog {
			shown = noLogError{err}
		}
		e.emit(events.Event{Type: events.Retry, Play: sc.play.Name, PlayIdx: sc.pi, Batch: sc.batch, Step: step.Title(),
			StepIdx: si, Module: step.Module.Name(), Host: hs.host.Name, Attempt: attempt, Error: shown.Error(),
			Msg: fmt.Sprintf("retrying in %s (%d/%d)", wait, attempt, step.Retries)})
		select {
		case <-ctx.Done():
		case <-e.opts.Clock.After(wait):
		}
	}
}

// record keeps what a successful step leaves in the runner: the facts it
// set, the handlers it notified, and its entry on the rollback stack.
func (e *engine) record(step *playbook.Step, si int, hs *hostState, check bool, params modules.Params, res modules.Result) {
	if len(res.Vars) > 0 {
		for k, v := range res.Vars {
			hs.facts[k] = v
		}
	}
	if res.Changed {
		for _, h := range step.Notify {
			hs.notified[h] = true
		}
	}
	if !check {
		undoer, _ := step.Module.(modules.Undoer)
		if len(step.Rollback) > 0 || undoer != nil {
			hs.rollback = append(hs.rollback, rollbackEntry{step: step, params: params, result: journaled(res), undoer: undoer, si: si})
		}
	}
}

// conclude registers the attempt's result and applies failed_when,
// changed_when and until. It returns the attempt's final error.
func (e *engine) conclude(step *playbook.Step, hs *hostState, res *modules.Result, err error) error {
	learnSecrets(e.opts.Redactor, res.Data)
	reg := eval.Registered{Ran: true, Changed: res.Changed, Failed: err != nil, RC: res.RC,
		Stdout: res.Stdout, Stderr: res.Stderr, Msg: res.Msg, Data: res.Data}
	if err != nil && reg.Msg == "" {
		reg.Msg = err.Error()
	}
	if step.Register != "" {
		hs.setRegistered(step.Register, reg)
	}
	unknown := errors.Is(err, failure.ErrUnknownOutcome)
	if step.ChangedWhen == nil && step.FailedWhen == nil && step.Until == nil {
		return err
	}
	env, envErr := e.env(hs)
	if envErr != nil {
		return envErr
	}
	if step.FailedWhen != nil && !unknown {
		failed, ferr := step.FailedWhen.EvalBool(env)
		if ferr != nil {
			return ferr
		}
		switch {
		case failed && err == nil:
			err = fmt.Errorf("failed_when: %s", step.FailedWhen.Source)
		case !failed:
			err = nil
		}
		reg.Failed = failed
	}
	if step.ChangedWhen != nil && !unknown {
		changed, cerr := step.ChangedWhen.EvalBool(env)
		if cerr != nil {
			return cerr
		}
		reg.Changed = changed
		res.Changed = changed
	}
	if step.Register != "" {
		hs.setRegistered(step.Register, reg)
	}
	if err == nil && step.Until != nil {
		env, _ = e.env(hs)
		ok, uerr := step.Until.EvalBool(env)
		if uerr != nil {
			return uerr
		}
		if !ok {
			return fmt.Errorf("%w: %s", errUntil, step.Until.Source)
		}
	}
	return err
}

func backoff(delay time.Duration, factor float64, attempt int) time.Duration {
	if factor <= 1 {
		return delay
	}
	return time.Duration(float64(delay) * math.Pow(factor, float64(attempt-1)))
}

// stepConn picks the connection a step uses on a host: none for a module
// that only talks to the API, the runner's own for delegate_to: localhost
// and the implicit localhost, else the host's. It is the one place this is
// decided: a step, its rollback steps and its Undo all go through it, so an
// undo always runs on the machine the step changed.
func (e *engine) stepConn(ctx context.Context, step *playbook.Step, hs *hostState) (modules.Conn, error) {
	if _, apiOnly := step.Module.(modules.LocalOnly); apiOnly {
		return nil, nil
	}
	return e.connFor(ctx, hs, step.DelegateTo == "localhost" || hs.host.Local)
}

// connFor is the runner's local connection, or hs's host connection.
func (e *engine) connFor(ctx context.Context, hs *hostState, local bool) (modules.Conn, error) {
	if local {
		if e.opts.Local == nil {
			return nil, errors.New("localhost: no local transport")
		}
		return e.opts.Local, nil
	}
	return e.hostConn(ctx, hs)
}

// hostConn opens a host's connection once; later steps (and peers' steps,
// see Target.Peers) reuse it.
func (e *engine) hostConn(ctx context.Context, hs *hostState) (modules.Conn, error) {
	hs.connMu.Lock()
	defer hs.connMu.Unlock()
	if hs.conn != nil {
		return hs.conn, nil
	}
	if e.opts.Connector == nil {
		return nil, ErrNoConnector
	}
	c, err := e.opts.Connector.Connect(ctx, hs.host)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", hs.host.Name, err)
	}
	hs.conn = c
	return c, nil
}

// peers gives steps access to other inventory hosts (Target.Peers).
type peers struct{ e *engine }

func (p peers) Host(name string) (modules.HostInfo, bool) {
	h, ok := p.e.inv.Host(name)
	if !ok {
		return modules.HostInfo{}, false
	}
	return modules.HostInfo{Name: h.Name, Address: h.Address, NodeName: h.NodeName, Vars: p.e.inv.HostVars(name)}, true
}

func (p peers) Conn(ctx context.Context, name string) (modules.Conn, error) {
	h, ok := p.e.inv.Host(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPeer, name)
	}
	return p.e.connFor(ctx, p.e.state(name), h.Local)
}

// rollback unwinds a host's rollback stack, newest first, under a fresh
// bounded context so that an interrupt does not cancel the compensation.
func (e *engine) rollback(ctx context.Context, sc *scope, hs *hostState) {
	if len(hs.rollback) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.RollbackTimeout)
	defer cancel()
	stack := hs.rollback
	hs.rollback = nil
	for i := len(stack) - 1; i >= 0; i-- {
		ent := stack[i]
		ev := events.Event{Type: events.RollbackStart, Play: sc.play.Name, PlayIdx: sc.pi, Batch: sc.batch,
			Step: ent.step.Title(), StepIdx: ent.si, Module: ent.step.Module.Name(), Host: hs.host.Name}
		e.emit(ev)
		start := e.opts.Clock.Now()
		var err error
		if len(ent.step.Rollback) > 0 {
			err = e.runRollbackSteps(rctx, sc, ent, hs)
		} else {
			err = e.undo(rctx, ent, hs)
		}
		ev.Type, ev.Duration, ev.Outcome = events.RollbackEnd, e.opts.Clock.Now().Sub(start), events.RolledBack
		if err != nil && ent.step.NoLog {
			err = noLogError{err}
		}
		if err != nil {
			ev.Outcome, ev.Error = events.Failed, err.Error()
		}
		e.emit(ev)
		e.recap.Record(hs.host.Name, ev.Outcome, 0)
	}
}

// undo runs a module's own Undo on the connection its step used.
func (e *engine) undo(ctx context.Context, ent rollbackEntry, hs *hostState) error {
	target := e.target(hs, false, e.opts.Log.With(zap.String("host", hs.host.Name)))
	conn, err := e.stepConn(ctx, ent.step, hs)
	if err != nil {
		return err
	}
	target.Conn = conn
	_, err = guard(target.Log, ent.step.Module.Name(), func() (modules.Result, error) {
		return modules.Result{}, ent.undoer.Undo(ctx, target, ent.params, ent.result)
	})
	return err
}

// guard calls a module, turning a panic into an error of that host's step
// (failure.ErrModulePanic): the host fails and rolls back, other hosts go
// on. The stack goes to the log.
func guard(log *zap.Logger, module string, call func() (modules.Result, error)) (res modules.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("module panicked", zap.String("module", module), zap.Any("panic", r), zap.Stack("stack"))
			res, err = modules.Result{}, fmt.Errorf("%w: %s: %v", failure.ErrModulePanic, module, r)
		}
	}()
	return call()
}

// runRollbackSteps runs a step's rollback: steps in order on the host.
func (e *engine) runRollbackSteps(ctx context.Context, sc *scope, ent rollbackEntry, hs *hostState) error {
	for _, rs := range ent.step.Rollback {
		env, err := e.env(hs)
		if err != nil {
			return err
		}
		if rs.When != nil {
			ok, err := rs.When.EvalBool(env)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		p, err := rs.DecodeParams(env)
		if err != nil {
			return err
		}
		target := e.target(hs, false, e.opts.Log.With(zap.String("host", hs.host.Name)))
		if target.Conn, err = e.stepConn(ctx, rs, hs); err != nil {
			return err
		}
		if _, err := guard(target.Log, rs.Module.Name(), func() (modules.Result, error) { return rs.Module.Run(ctx, target, p) }); err != nil {
			return fmt.Errorf("rollback step %q: %w", rs.Title(), err)
		}
	}
	return nil
}

// journaled is res with its Data in the form the journal gives back (JSON
// objects, lists and numbers), so that an Undo sees the same values in the
// run that made the change and after --resume. Data that does not encode
// stays as it is: the journal write fails and stops the run anyway.
func journaled(res modules.Result) modules.Result {
	b, err := json.Marshal(res.Data)
	if err != nil {
		return res
	}
	var data map[string]any
	if json.Unmarshal(b, &data) == nil {
		res.Data = data
	}
	return res
}

func registeredMap(r eval.Registered) map[string]any {
	return map[string]any{"ran": r.Ran, "changed": r.Changed, "failed": r.Failed, "skipped": r.Skipped,
		"rc": r.RC, "stdout": r.Stdout, "stderr": r.Stderr, "msg": r.Msg, "data": r.Data}
}

// target builds what a module sees of a host.
func (e *engine) target(hs *hostState, check bool, log *zap.Logger) *modules.Target {
	return &modules.Target{
		Host:  modules.HostInfo{Name: hs.host.Name, Address: hs.host.Address, NodeName: hs.host.NodeName, Vars: hs.vars},
		Facts: hs.factsCopy(),
		Check: check, Diff: e.opts.Diff, Log: log, Clock: e.opts.Clock, Prompt: e.opts.Prompt,
		Cluster: e.opts.Cluster, RunID: e.opts.RunID, RunStart: e.begun,
		Peers: peers{e},
		Eval: func(x *eval.Expr) (bool, error) {
			env, err := e.env(hs)
			if err != nil {
				return false, err
			}
			return x.EvalBool(env)
		},
		Render: func(text string) (any, error) {
			tpl, err := eval.NewCompiler(e.pb.EnvType).CompileTemplate(text)
			if err != nil {
				return nil, err
			}
			env, err := e.env(hs)
			if err != nil {
				return nil, err
			}
			return tpl.Render(env)
		},
	}
}
