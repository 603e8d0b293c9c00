package modules

import (
	"context"
)

// Cordon marks a node unschedulable.
type Cordon struct{}

// CordonParams are cordon's parameters.
type CordonParams struct {
	Node string `yaml:"node" doc:"Node name (default: the host's node_name)"`
}

// Validate checks the parameters.
func (p *CordonParams) Validate() error { return nil }

func (Cordon) Name() string { return "cordon" }
func (Cordon) Doc() string {
	return "Mark the host's Node unschedulable, noting on it that kubeplay did. A node already cordoned is left as it is (and uncordon will not return it to service). Rollback uncordons what this step cordoned."
}
func (Cordon) NewParams() Params { return &CordonParams{} }

// Check reports whether the node would be cordoned.
func (Cordon) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	node, err := nodeName(t, p.(*CordonParams).Node)
	if err != nil {
		return Result{}, err
	}
	cordoned, _, err := isCordoned(ctx, t, node)
	if err != nil || cordoned {
		return Result{Msg: node + " is already cordoned"}, err
	}
	return Result{Changed: true, Msg: "would cordon " + node}, nil
}

// Run cordons the node.
func (Cordon) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	node, err := nodeName(t, p.(*CordonParams).Node)
	if err != nil {
		return Result{}, err
	}
	changed, err := cordonNode(ctx, t, node)
	if err != nil {
		return Result{}, err
	}
	st := cordonState{Node: node, CordonedByUs: changed}
	if !changed {
		return Result{Msg: node + " was already cordoned", Data: asData(st)}, nil
	}
	return Result{Changed: true, Msg: "cordoned " + node, Data: asData(st)}, nil
}

// cordonState is cordon's and drain's undo state.
type cordonState struct {
	Node         string `json:"node"`
	CordonedByUs bool   `json:"cordoned_by_us"`
}

// Undo uncordons the node if this step cordoned it.
func (Cordon) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	st, err := loadState[cordonState](r)
	if err != nil || !st.CordonedByUs {
		return err
	}
	_, _, err = uncordonNode(ctx, t, st.Node, false)
	return err
}
