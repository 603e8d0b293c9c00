package runner

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
)

// Resume is what an earlier run of the same playbook finished, read from
// its journal.
type Resume struct {
	From string // the earlier run's id
	Done map[StepKey]Done
}

// StepKey names one step of a play's steps on one host.
type StepKey struct {
	Play, Step int
	Host       string
}

// Done is how a step ended in the earlier run.
type Done struct {
	Outcome events.Outcome
	Result  map[string]any // registered form: ran, changed, rc, stdout, msg, data, ...
	Facts   map[string]any
}

// ResumeFrom reads a journal. Only a play's own steps count (not rescue,
// always or handlers), for each step and host the last word wins, and a
// step whose effect was rolled back is not done. A step whose journaled
// result is not what later steps saw (a secret masked in it, output cut)
// runs again, so that they see it whole. A step whose rollback started
// but never ended (the run was killed mid-rollback) is neither done nor
// undone: its outcome is unknown, and the resume probes the host.
func ResumeFrom(runID string, evs []events.Event) *Resume {
	r := &Resume{From: runID, Done: map[StepKey]Done{}}
	for _, e := range evs {
		key := StepKey{e.PlayIdx, e.StepIdx, e.Host}
		switch {
		case e.Check:
		case e.Type == events.HostEnd && e.Section == "" && (e.Redacted || e.Cut > 0):
			delete(r.Done, key)
		case e.Type == events.HostEnd && e.Section == "":
			r.Done[key] = Done{Outcome: e.Outcome, Result: e.Result, Facts: e.Facts}
		case e.Type == events.RollbackStart:
			if d, ok := r.Done[key]; ok {
				d.Outcome = events.Unknown
				r.Done[key] = d
			}
		case e.Type == events.RollbackEnd:
			delete(r.Done, key)
		}
	}
	return r
}

// ErrUnverifiable marks a step whose earlier outcome is unknown and whose
// module cannot check the host's state.
var ErrUnverifiable = fmt.Errorf("%w: cannot verify", failure.ErrUnknownOutcome)

// resumeStep decides a step from the earlier run. A step that ended ok or
// changed is not run again: its registered result, facts and rollback are
// restored. A step whose outcome was unknown is probed with its module's
// Check: unchanged means it took effect; otherwise it runs again (a module
// that can check is idempotent). Without Check, the host fails, asking for
// a person to look. Anything else runs as usual (handled is false).
func (e *engine) resumeStep(ctx context.Context, sc *scope, si int, step *playbook.Step, hs *hostState, log *zap.Logger) (events.Outcome, modules.Result, error, bool) {
	d, ok := e.opts.Resume.Done[StepKey{sc.pi, si, hs.host.Name}]
	if !ok || e.opts.Check {
		return "", modules.Result{}, nil, false
	}
	switch d.Outcome {
	case events.OK, events.Changed:
		res := resultFrom(d)
		res.Msg = fmt.Sprintf("done in run %s", e.opts.Resume.From)
		if err := e.restore(step, si, hs, d, res); err != nil {
			return events.Failed, res, err, true
		}
		return d.Outcome, res, nil, true
	case events.Unknown:
		checker, ok := step.Module.(modules.Checker)
		if !ok {
			return events.Failed, modules.Result{}, fmt.Errorf("%w: the outcome of this step was unknown in run %s and %s has no check; look at the host, then continue with --start-at-step",
				ErrUnverifiable, e.opts.Resume.From, step.Module.Name()), true
		}
		env, err := e.env(hs)
		if err != nil {
			return events.Failed, modules.Result{}, err, true
		}
		params, err := step.DecodeParams(env)
		if err != nil {
			return events.Failed, modules.Result{}, err, true
		}
		target := e.target(hs, true, log)
		if target.Conn, err = e.stepConn(ctx, step, hs); err != nil {
			return events.Failed, modules.Result{}, err, true
		}
		probe, err := guard(log, step.Module.Name(), func() (modules.Result, error) { return checker.Check(ctx, target, params) })
		if err != nil || probe.Changed {
			log.Info("unknown outcome in the earlier run: running the step again", zap.String("from", e.opts.Resume.From))
			return "", modules.Result{}, nil, false
		}
		probe.Msg = fmt.Sprintf("outcome unknown in run %s; the host is in the step's end state", e.opts.Resume.From)
		d.Result = registeredMap(eval.Registered{Ran: true, Msg: probe.Msg, Data: probe.Data, Stdout: probe.Stdout})
		if err := e.restore(step, si, hs, d, probe); err != nil {
			return events.Failed, probe, err, true
		}
		return events.OK, probe, nil, true
	}
	return "", modules.Result{}, nil, false
}

// resultFrom rebuilds a module result from its journaled form.
func resultFrom(d Done) modules.Result {
	res := modules.Result{Vars: d.Facts}
	if d.Result == nil {
		return res
	}
	res.Changed, _ = d.Result["changed"].(bool)
	res.Stdout, _ = d.Result["stdout"].(string)
	res.Stderr, _ = d.Result["stderr"].(string)
	res.Data, _ = d.Result["data"].(map[string]any)
	if rc, ok := d.Result["rc"].(float64); ok {
		res.RC = int(rc)
	}
	return res
}

// restore puts back what a finished step left in the runner: its
// registered result, its facts, and its entry on the rollback stack (so
// that a failure later in this run still undoes it).
func (e *engine) restore(step *playbook.Step, si int, hs *hostState, d Done, res modules.Result) error {
	if step.Register != "" {
		hs.setRegistered(step.Register, eval.Registered{Ran: true, Changed: res.Changed, RC: res.RC,
			Stdout: res.Stdout, Stderr: res.Stderr, Msg: res.Msg, Data: res.Data})
	}
	for k, v := range d.Facts {
		hs.mu.Lock()
		hs.facts[k] = v
		hs.mu.Unlock()
	}
	undoer, _ := step.Module.(modules.Undoer)
	if len(step.Rollback) == 0 && undoer == nil {
		return nil
	}
	env, err := e.env(hs)
	if err != nil {
		return err
	}
	params, err := step.DecodeParams(env)
	if err != nil {
		return err
	}
	hs.rollback = append(hs.rollback, rollbackEntry{step: step, params: params, result: res, undoer: undoer, si: si})
	return nil
}
