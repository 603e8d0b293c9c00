package runner

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"sync"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
)

// hostState is everything the engine tracks for one host during a run.
// Steps of one host never run concurrently, so fields are accessed by one
// goroutine at a time; mu guards what run_once copies across hosts.
type hostState struct {
	mu         sync.Mutex
	host       *inventory.Host
	vars       map[string]any
	groups     []string
	facts      map[string]any
	registered map[string]eval.Registered
	playVars   reflect.Value // evaluated playbook vars; invalid until first use
	connMu     sync.Mutex    // guards conn: a peer's step may open it (Target.Peers)
	conn       modules.Conn

	play         eval.PlayInfo // the play and batch the host is in now
	rollback     []rollbackEntry
	notified     map[string]bool
	failed       bool
	failErr      error
	failStep     string
	rescuing     bool
	rescueFailed bool
}

// rollbackEntry is one completed step that can be compensated.
type rollbackEntry struct {
	step   *playbook.Step
	params modules.Params
	result modules.Result
	undoer modules.Undoer // set when the module undoes itself
	si     int
}

func (hs *hostState) setRegistered(name string, r eval.Registered) {
	hs.mu.Lock()
	hs.registered[name] = r
	hs.mu.Unlock()
}

// env builds the expression environment for this host.
func (e *engine) env(hs *hostState) (any, error) {
	if !hs.playVars.IsValid() {
		v, err := e.evalVars(hs)
		if err != nil {
			return nil, err
		}
		hs.playVars = v
	}
	return e.envWith(hs, hs.playVars), nil
}

func (e *engine) envWith(hs *hostState, vars reflect.Value) any {
	env := reflect.New(e.pb.EnvType).Elem()
	must(eval.SetField(env, eval.NameParams, e.params.Interface()))
	must(eval.SetField(env, eval.NameVars, vars.Interface()))
	must(eval.SetField(env, eval.NameHost, eval.Host{
		Name: hs.host.Name, Address: hs.host.Address, NodeName: cmp.Or(hs.host.NodeName, hs.host.Name), Groups: hs.groups, Vars: maps.Clone(hs.vars),
	}))
	must(eval.SetField(env, eval.NameFacts, maps.Clone(hs.facts)))
	must(eval.SetField(env, eval.NameInventory, e.invEnv))
	must(eval.SetField(env, eval.NameRun, eval.RunInfo{ID: e.opts.RunID, Check: e.opts.Check, Diff: e.opts.Diff}))
	must(eval.SetField(env, eval.NamePlay, hs.play))
	hs.mu.Lock()
	for name, r := range hs.registered {
		must(eval.SetField(env, name, r))
	}
	hs.mu.Unlock()
	return env.Interface()
}

// evalVars evaluates playbook vars in order for one host.
func (e *engine) evalVars(hs *hostState) (reflect.Value, error) {
	vars := reflect.New(e.pb.VarsType).Elem()
	for _, v := range e.pb.Vars {
		val, err := v.Node.Plain(e.envWith(hs, vars))
		if err != nil {
			return vars, fmt.Errorf("var %s: %w", v.Name, err)
		}
		if err := eval.SetField(vars, v.Name, val); err != nil {
			return vars, fmt.Errorf("var %s: %w", v.Name, err)
		}
	}
	return vars, nil
}

func must(err error) {
	if err != nil {
		panic("runner: environment does not match its type: " + err.Error())
	}
}

// factsCopy is the host's facts for a module to read.
func (hs *hostState) factsCopy() map[string]any { return maps.Clone(hs.facts) }
