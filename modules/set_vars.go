package modules

import (
	"context"
	"fmt"
	"sort"

	"github.com/kubeplay/kubeplay/eval"
)

// SetVars sets host facts for later steps.
type SetVars struct{}

// SetVarsParams maps fact names to values.
type SetVarsParams map[string]any

// Validate checks the names.
func (p *SetVarsParams) Validate() error {
	if len(*p) == 0 {
		return fmt.Errorf("at least one variable is required")
	}
	for k := range *p {
		if !eval.ValidName(k) {
			return fmt.Errorf("%q is not a valid variable name", k)
		}
	}
	return nil
}

func (SetVars) Name() string { return "set-vars" }
func (SetVars) Doc() string {
	return "Set per-host facts (visible as facts.NAME in later steps). Changes nothing on the host."
}
func (SetVars) NewParams() Params { return &SetVarsParams{} }
func (SetVars) LocalOnly()        {}

// Run returns the values to merge into the host's facts.
func (SetVars) Run(_ context.Context, _ *Target, p Params) (Result, error) {
	vp := *p.(*SetVarsParams)
	names := make([]string, 0, len(vp))
	vars := make(map[string]any, len(vp))
	for k, v := range vp {
		vars[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	return Result{Vars: vars, Msg: fmt.Sprintf("set %v", names)}, nil
}

// Check is Run: facts are runner state, so they are set in check mode too.
func (s SetVars) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return s.Run(ctx, t, p)
}
