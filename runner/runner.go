// Package runner is kubeplay's engine: it resolves a play's hosts, cuts them
// into batches, runs steps in Ansible's linear order with retries, until,
// rollback stacks, rescue/always and handlers, and reports everything as
// typed events.
package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/secret"
)

// Connector opens connections to inventory hosts.
type Connector interface {
	Connect(ctx context.Context, h *inventory.Host) (modules.Conn, error)
}

// Options control a run.
type Options struct {
	RunID       string
	Forks       int // concurrent hosts per step; default 5
	Check       bool
	Diff        bool
	Limit       string
	Tags        []string
	SkipTags    []string
	StartAtStep string
	// Params are the playbook's parameter values (from -e or a file).
	Params map[string]any
	// ExtraVars override every inventory variable (host.vars).
	ExtraVars map[string]any
	Sink      events.Sink
	Log       *zap.Logger
	Clock     modules.Clock
	Connector Connector    // remote hosts
	Local     modules.Conn // delegate_to: localhost
	// Cluster is the cluster's API for cluster steps; zero without one.
	modules.Cluster
	Prompt          modules.Prompter
	RollbackTimeout time.Duration // default 10m
	// Redactor masks secret values in every event; Run registers the
	// secret params with it.
	Redactor *secret.Redactor
	// Resume continues an earlier run: steps it finished are not run again.
	Resume *Resume
	// InventoryCheck is what the check of the inventory against the
	// cluster's Nodes found before the run ("ok ...", "skipped ..."): the
	// journal records it after run.start.
	InventoryCheck string
}

// ErrNoConnector is returned when a step needs a host connection and none
// is configured.
var ErrNoConnector = errors.New("no transport configured for remote hosts")

// ErrUnknownPeer is returned when a step asks for a host the inventory does
// not have.
var ErrUnknownPeer = errors.New("no such host in the inventory")

type engine struct {
	pb     *playbook.Playbook
	inv    *inventory.Inventory
	opts   Options
	sink   events.Sink
	recap  *Recap
	params reflect.Value
	invEnv eval.Inventory
	seq    atomic.Int64
	mu     sync.Mutex
	hosts  map[string]*hostState
	// started is false while --start-at-step has not been reached.
	started bool
	// begun is when the run started.
	begun time.Time
	// touched is set once a step has started on a host: from then on an
	// error that stops the run is no longer "nothing was touched".
	touched atomic.Bool
	// stop ends the run with a cause (a journal that failed), as an
	// interrupt does: no new step, in-flight hosts roll back.
	stop context.CancelCauseFunc
}

// Run executes the playbook against the inventory.
func Run(ctx context.Context, pb *playbook.Playbook, inv *inventory.Inventory, opts Options) (*Recap, error) {
	if opts.Forks <= 0 {
		opts.Forks = 5
	}
	if opts.Clock == nil {
		opts.Clock = modules.RealClock{}
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.RollbackTimeout == 0 {
		opts.RollbackTimeout = 10 * time.Minute
	}
	if opts.Redactor == nil {
		opts.Redactor = secret.NewRedactor()
	}
	params, err := pb.ResolveParams(opts.Params)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	for _, name := range pb.SecretParams() {
		if v, ok := eval.GetField(params, name); ok {
			opts.Redactor.Add(v.(secret.String).Reveal())
		}
	}
	// credentials in the inventory (what `kubeplay inventory` masks) and
	// in extra vars are masked in the run's output as well
	opts.Redactor.Add(inv.SecretValues()...)
	for k, v := range opts.ExtraVars {
		if s, ok := v.(string); ok && inventory.IsSecretVar(k) {
			opts.Redactor.Add(s)
		}
	}
	e := &engine{
		pb: pb, inv: inv, opts: opts, recap: newRecap(), params: params,
		hosts: map[string]*hostState{}, started: opts.StartAtStep == "",
	}
	e.sink = &redactingSink{next: opts.Sink, r: opts.Redactor}
	if opts.Sink == nil {
		e.sink = &redactingSink{next: events.Multi{}, r: opts.Redactor}
	}
	e.invEnv = eval.Inventory{Groups: map[string][]string{}, Roles: map[string][]string{}, Hosts: inv.HostNames()}
	for _, g := range inv.GroupNames() {
		e.invEnv.Groups[g] = inv.GroupHosts(g)
	}
	roles, err := inv.Roles()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	for _, r := range roles {
		e.invEnv.Roles[r.Name] = r.Hosts
	}
	if opts.StartAtStep != "" && !HasStep(pb, opts.StartAtStep) {
		return nil, fmt.Errorf("%w: --start-at-step: no step is named %q", failure.ErrValidation, opts.StartAtStep)
	}
	var limit []string
	if opts.Limit != "" {
		if limit, err = inv.Match(opts.Limit); err != nil {
			return nil, fmt.Errorf("%w: --limit: %w", failure.ErrValidation, err)
		}
		if len(limit) == 0 {
			return nil, fmt.Errorf("%w: --limit %q matches no hosts", failure.ErrValidation, opts.Limit)
		}
	}
	// every play's hosts resolve before the first play runs: a pattern or
	// a role that matches nothing never stops a run halfway
	playHosts := make([][]string, len(pb.Plays))
	for pi, play := range pb.Plays {
		if playHosts[pi], err = e.resolvePlay(play); err != nil {
			return nil, err
		}
	}
	start := opts.Clock.Now()
	e.begun = start
	startEv := events.Event{Type: events.RunStart, Check: opts.Check}
	if opts.Resume != nil {
		startEv.Msg = "resumes run " + opts.Resume.From
	}
	e.emit(startEv)
	if opts.InventoryCheck != "" {
		e.emit(events.Event{Type: events.InventoryCheck, Msg: "INVENTORY check: " + opts.InventoryCheck})
	}
	ctx, e.stop = context.WithCancelCause(ctx)
	defer e.stop(nil)
	runErr := secret.RedactError(opts.Redactor, e.runGuarded(ctx, playHosts, limit))
	end := events.Event{Type: events.RunEnd, Duration: opts.Clock.Now().Sub(start), Outcome: events.OK}
	if runErr != nil {
		end.Outcome, end.Error = events.Failed, runErr.Error()
		if errors.Is(runErr, failure.ErrInterrupted) {
			end.Outcome = events.Interrupted
		}
	}
	e.emit(end)
	return e.recap, runErr
}

// journalErr is the first error of a sink that reports errors (the
// journal), checked at every step boundary.
func (e *engine) journalErr() error {
	if es, ok := e.opts.Sink.(interface{ Err() error }); ok {
		return es.Err()
	}
	return nil
}

// stopped is the error of a run whose context ended: an interrupt, or the
// cause the engine stopped it with.
func stopped(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, failure.ErrJournal) {
		return cause
	}
	return fmt.Errorf("%w: %w", failure.ErrInterrupted, cause)
}

// HasStep reports whether a step of any play and section has this title.
func HasStep(pb *playbook.Playbook, title string) bool {
	for _, p := range pb.Plays {
		for _, sec := range [][]*playbook.Step{p.Steps, p.Rescue, p.Always, p.Handlers} {
			for _, s := range sec {
				if s.Title() == title {
					return true
				}
			}
		}
	}
	return false
}

// runGuarded is run, with a panic of the engine itself reported as an
// internal error (exit 1) after run.end, instead of killing the process.
func (e *engine) runGuarded(ctx context.Context, playHosts [][]string, limit []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.opts.Log.Error("engine panicked", zap.Any("panic", r), zap.Stack("stack"))
			err = fmt.Errorf("%w: %v", failure.ErrInternal, r)
		}
	}()
	err = e.run(ctx, playHosts, limit)
	var re *failure.RunError
	if err != nil && e.touched.Load() && errors.Is(err, failure.ErrValidation) && !errors.As(err, &re) {
		// a play's hosts or serial that only resolved after earlier plays
		// ran: the run stopped partway, it did not leave things untouched
		return &failure.RunError{Play: "(run)", Reason: err.Error()}
	}
	return err
}

// resolvePlay resolves a play's host pattern (rendered with the params).
func (e *engine) resolvePlay(play *playbook.Play) ([]string, error) {
	pattern, err := PlayHosts(e.pb, play, e.params)
	if err != nil {
		return nil, fmt.Errorf("%w: play %q: %w", failure.ErrValidation, play.Name, err)
	}
	hosts, err := e.inv.Match(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: play %q: %w", failure.ErrValidation, play.Name, err)
	}
	return hosts, nil
}

func (e *engine) run(ctx context.Context, playHosts [][]string, limit []string) error {
	var failed []*failure.HostError
	for pi, play := range e.pb.Plays {
		hosts := slices.Clone(playHosts[pi])
		if limit != nil {
			hosts = slices.DeleteFunc(hosts, func(h string) bool { return !slices.Contains(limit, h) })
		}
		// hosts that failed an earlier play take no further part
		hosts = slices.DeleteFunc(hosts, func(h string) bool { return e.state(h).failed })
		pe := events.Event{Type: events.PlayStart, Play: play.Name, PlayIdx: pi, Hosts: hosts}
		e.recap.see(hosts)
		e.emit(pe)
		if len(hosts) == 0 {
			pe.Type, pe.Msg = events.PlayEnd, "no hosts matched"
			e.emit(pe)
			continue
		}
		playFailed, stop, err := e.runPlay(ctx, pi, play, hosts)
		failed = append(failed, playFailed...)
		pe.Type = events.PlayEnd
		e.emit(pe)
		if err != nil {
			return err
		}
		if stop != "" {
			return &failure.RunError{Play: play.Name, Hosts: failed, Reason: stop}
		}
	}
	if len(failed) > 0 {
		return &failure.RunError{Play: e.pb.Plays[len(e.pb.Plays)-1].Name, Hosts: failed}
	}
	return nil
}

// runPlay runs one play batch by batch. It returns the hosts that failed,
// a non-empty stop reason when the failure threshold stopped the run, and an
// error for interrupts.
func (e *engine) runPlay(ctx context.Context, pi int, play *playbook.Play, hosts []string) ([]*failure.HostError, string, error) {
	var failed []*failure.HostError
	serial, err := PlaySerial(e.pb, play, e.params)
	if err != nil {
		return nil, "", fmt.Errorf("%w: play %q: %w", failure.ErrValidation, play.Name, err)
	}
	for bi, batch := range Batches(hosts, serial) {
		be := events.Event{Type: events.BatchStart, Play: play.Name, PlayIdx: pi, Batch: bi + 1, Hosts: batch}
		e.emit(be)
		bf := e.runBatch(ctx, pi, play, bi+1, batch)
		failed = append(failed, bf...)
		be.Type = events.BatchEnd
		e.emit(be)
		if ctx.Err() != nil {
			return failed, "", stopped(ctx)
		}
		if len(bf) > 0 && len(bf)*100 > play.MaxFailPct*len(batch) {
			return failed, fmt.Sprintf("%d of %d host(s) in batch %d failed, over max_fail_percentage %d; later batches were not started",
				len(bf), len(batch), bi+1, play.MaxFailPct), nil
		}
	}
	return failed, "", nil
}

// runBatch runs the play's sections on one batch and returns the hosts that
// ended failed.
func (e *engine) runBatch(ctx context.Context, pi int, play *playbook.Play, bi int, batch []string) []*failure.HostError {
	sc := &scope{pi: pi, play: play, batch: bi, hosts: batch}
	for _, h := range batch {
		hs := e.state(h)
		hs.rollback = nil
		hs.notified = map[string]bool{}
		hs.play = eval.PlayInfo{Name: play.Name, Batch: bi}
	}
	e.section(ctx, sc, "", play.Steps, batch, false)

	// hosts that failed: rescue (rollback stacks already ran at failure)
	var failedHosts []string
	for _, h := range batch {
		if e.state(h).failed {
			failedHosts = append(failedHosts, h)
		}
	}
	if len(play.Rescue) > 0 && len(failedHosts) > 0 && ctx.Err() == nil {
		for _, h := range failedHosts {
			e.state(h).rescuing = true
		}
		e.section(ctx, sc, "rescue", play.Rescue, failedHosts, true)
		for _, h := range failedHosts {
			hs := e.state(h)
			if hs.rescuing && !hs.rescueFailed {
				hs.failed, hs.failErr = false, nil
				e.recap.rescued(h)
			}
			hs.rescuing = false
		}
	}
	if ctx.Err() == nil && !e.overThreshold(sc) {
		var notifiedOK []string
		for _, h := range batch {
			if !e.state(h).failed {
				notifiedOK = append(notifiedOK, h)
			}
		}
		for _, handler := range play.Handlers {
			var targets []string
			for _, h := range notifiedOK {
				if e.state(h).notified[handler.Name] {
					targets = append(targets, h)
				}
			}
			if len(targets) > 0 {
				e.emit(events.Event{Type: events.HandlerStart, Play: play.Name, PlayIdx: pi, Batch: bi, Step: handler.Name, Hosts: targets})
				e.section(ctx, sc, "handler", []*playbook.Step{handler}, targets, true)
			}
		}
	}
	if ctx.Err() != nil {
		// interrupted: undo what the batch's hosts did, newest first
		for _, h := range batch {
			e.rollback(ctx, sc, e.state(h))
		}
	}
	if len(play.Always) > 0 {
		actx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), e.opts.RollbackTimeout)
			defer cancel()
		}
		e.section(actx, sc, "always", play.Always, batch, true)
	}
	var out []*failure.HostError
	for _, h := range batch {
		hs := e.state(h)
		hs.rollback = nil
		if hs.failed {
			out = append(out, &failure.HostError{Host: h, Step: hs.failStep, Err: hs.failErr})
		}
	}
	return out
}

type scope struct {
	pi    int
	play  *playbook.Play
	batch int
	hosts []string // the batch
}

// overThreshold reports whether the batch's failures exceed the play's
// max_fail_percentage (Ansible: strictly greater; 0 means any failure).
func (e *engine) overThreshold(sc *scope) bool {
	n := 0
	for _, h := range sc.hosts {
		if e.state(h).failed {
			n++
		}
	}
	return n > 0 && n*100 > sc.play.MaxFailPct*len(sc.hosts)
}

// section runs steps in linear order: every host finishes step i before
// step i+1 starts. includeFailed runs on hosts already failed (rescue,
// always, handlers decide their own targets).
func (e *engine) section(ctx context.Context, sc *scope, part string, steps []*playbook.Step, hosts []string, includeFailed bool) {
	for si, step := range steps {
		if err := e.journalErr(); err != nil {
			e.stop(fmt.Errorf("%w: %w; stopping before step %q", failure.ErrJournal, err, step.Title()))
		}
		if ctx.Err() != nil {
			return
		}
		if !e.selected(step) {
			continue
		}
		var active []string
		for _, h := range hosts {
			hs := e.state(h)
			if includeFailed && (!hs.failed || hs.rescuing) {
				if hs.rescuing && hs.rescueFailed {
					continue
				}
				active = append(active, h)
				continue
			}
			if includeFailed || !hs.failed {
				active = append(active, h)
			}
		}
		if len(active) == 0 {
			return
		}
		se := events.Event{Type: events.StepStart, Play: sc.play.Name, PlayIdx: sc.pi, Batch: sc.batch,
			Step: step.Title(), StepIdx: si, Module: step.Module.Name(), Hosts: active, Check: e.opts.Check, Section: part}
		e.emit(se)
		e.runStepOnHosts(ctx, sc, part, si, step, active)
		se.Type = events.StepEnd
		e.emit(se)
		if !includeFailed && e.overThreshold(sc) {
			return // stop after the current step
		}
	}
}

// selected applies --tags, --skip-tags and --start-at-step.
func (e *engine) selected(step *playbook.Step) bool {
	if !e.started {
		if step.Title() != e.opts.StartAtStep {
			return false
		}
		e.started = true
	}
	hasAny := func(want []string) bool {
		for _, t := range step.Tags {
			if slices.Contains(want, t) {
				return true
			}
		}
		return false
	}
	if len(e.opts.SkipTags) > 0 && hasAny(e.opts.SkipTags) {
		return false
	}
	if len(e.opts.Tags) > 0 && !hasAny(e.opts.Tags) && !slices.Contains(step.Tags, "always") {
		return false
	}
	return true
}

func (e *engine) runStepOnHosts(ctx context.Context, sc *scope, part string, si int, step *playbook.Step, hosts []string) {
	if step.RunOnce {
		first := hosts[0]
		e.runStepGuarded(ctx, sc, part, si, step, e.state(first))
		reg, ok := e.state(first).registered[step.Register]
		if step.Register != "" && ok {
			for _, h := range hosts[1:] {
				e.state(h).setRegistered(step.Register, reg)
			}
		}
		return
	}
	sem := make(chan struct{}, e.opts.Forks)
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func(hs *hostState) {
			defer wg.Done()
			defer func() { <-sem }()
			e.runStepGuarded(ctx, sc, part, si, step, hs)
		}(e.state(h))
	}
	wg.Wait()
}

// runStepGuarded is runStep on a host's goroutine. A panic of the engine
// there (modules' own panics are caught by guard) fails that host with an
// internal error, so that the process survives to roll back and report.
func (e *engine) runStepGuarded(ctx context.Context, sc *scope, part string, si int, step *playbook.Step, hs *hostState) {
	defer func() {
		if r := recover(); r != nil {
			e.opts.Log.Error("engine panicked", zap.String("host", hs.host.Name), zap.Any("panic", r), zap.Stack("stack"))
			hs.failed, hs.failStep = true, step.Title()
			hs.failErr = fmt.Errorf("%w: %v", failure.ErrInternal, r)
			e.rollbackGuarded(ctx, sc, hs)
		}
	}()
	e.runStep(ctx, sc, part, si, step, hs)
}

// rollbackGuarded unwinds a host whose step the engine could not finish;
// a second panic there is logged, not raised.
func (e *engine) rollbackGuarded(ctx context.Context, sc *scope, hs *hostState) {
	defer func() {
		if r := recover(); r != nil {
			e.opts.Log.Error("engine panicked in rollback", zap.String("host", hs.host.Name), zap.Any("panic", r))
		}
	}()
	e.rollback(ctx, sc, hs)
}

func (e *engine) emit(ev events.Event) {
	ev.Schema = events.Schema
	ev.Seq = e.seq.Add(1)
	ev.Time = e.opts.Clock.Now()
	ev.Run = e.opts.RunID
	ev.Playbook = e.pb.Name
	e.sink.Emit(ev)
}

// redactingSink masks registered secret values in every text field, then
// bounds each text (events.MaxText).
type redactingSink struct {
	next events.Sink
	r    *secret.Redactor
}

func (s *redactingSink) Emit(ev events.Event) {
	ev.Msg = s.r.Redact(ev.Msg)
	ev.Error = s.r.Redact(ev.Error)
	ev.Diff = s.r.Redact(ev.Diff)
	if ev.Warnings != nil {
		ws := make([]string, len(ev.Warnings))
		for i, w := range ev.Warnings {
			ws[i] = s.r.Redact(w)
		}
		ev.Warnings = ws
	}
	// a secret masked in a result or facts (a secret.String prints as
	// [REDACTED] in the journal too) marks the event: a resume cannot
	// restore what later steps saw
	masked := false
	redact := func(v any) any {
		switch x := v.(type) {
		case string:
			red := s.r.Redact(x)
			masked = masked || red != x
			return red
		case secret.String:
			masked = true
		}
		return v
	}
	ev.Result = events.MapLeaves(ev.Result, redact)
	ev.Facts = events.MapLeaves(ev.Facts, redact)
	ev.Redacted = ev.Redacted || masked
	// bounded after redaction: a cut never keeps part of a secret
	ev.Bound()
	s.next.Emit(ev)
}

// learnSecrets adds the secrets a step produced (a token kubeadm created)
// to the redactor, so that the value is masked wherever it shows up later,
// whatever path it takes.
func learnSecrets(r *secret.Redactor, v any) {
	switch x := v.(type) {
	case secret.String:
		r.Add(x.Reveal())
	case map[string]any:
		for _, it := range x {
			learnSecrets(r, it)
		}
	case []any:
		for _, it := range x {
			learnSecrets(r, it)
		}
	}
}

func (e *engine) state(h string) *hostState {
	e.mu.Lock()
	defer e.mu.Unlock()
	hs, ok := e.hosts[h]
	if !ok {
		host, _ := e.inv.Host(h)
		vars := e.inv.HostVars(h)
		maps.Copy(vars, e.opts.ExtraVars)
		hs = &hostState{
			host:       host,
			vars:       vars,
			facts:      map[string]any{},
			registered: map[string]eval.Registered{},
			groups:     e.inv.HostGroups(h),
		}
		e.hosts[h] = hs
	}
	return hs
}

// playEnv is the environment for play-level templates (hosts, serial):
// they depend on the run's params only, never on one host.
func playEnv(pb *playbook.Playbook, params reflect.Value) any {
	e := &engine{pb: pb, params: params}
	return e.envWith(&hostState{host: &inventory.Host{}}, reflect.New(pb.VarsType).Elem())
}

// PlaySerial resolves a play's batch sizes.
func PlaySerial(pb *playbook.Playbook, play *playbook.Play, params reflect.Value) ([]playbook.Serial, error) {
	if play.SerialTmpl == nil {
		return play.Serial, nil
	}
	return play.RenderSerial(playEnv(pb, params))
}

// PlayHosts resolves a play's host pattern.
func PlayHosts(pb *playbook.Playbook, play *playbook.Play, params reflect.Value) (string, error) {
	if play.HostsTmpl == nil {
		return play.Hosts, nil
	}
	v, err := play.HostsTmpl.Render(playEnv(pb, params))
	if err != nil {
		return "", fmt.Errorf("hosts: %w", err)
	}
	return fmt.Sprint(v), nil
}
