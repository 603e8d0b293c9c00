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
	if !changed {
		return Result{Msg: node + " was already cordoned", Data: map[string]any{"node": node, "cordoned_by_us": false}}, nil
	}
	return Result{Changed: true, Msg: "cordoned " + node, Data: map[string]any{"node": node, "cordoned_by_us": true}}, nil
}

// Undo uncordons the node if this step cordoned it.
func (Cordon) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	if ours, _ := r.Data["cordoned_by_us"].(bool); !ours {
		return nil
	}
	node, _ := r.Data["node"].(string)
	_, _, err := uncordonNode(ctx, t, node, false)
	return err
}
