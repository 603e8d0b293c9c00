package modules

import (
	"context"
)

// Uncordon returns a node to service.
type Uncordon struct{}

// UncordonParams are uncordon's parameters.
type UncordonParams struct {
	Node  string `yaml:"node" doc:"Node name (default: the host's node_name)"`
	Force bool   `yaml:"force" doc:"also uncordon a node that was cordoned before kubeplay touched it"`
}

// Validate checks the parameters.
func (p *UncordonParams) Validate() error { return nil }

func (Uncordon) Name() string { return "uncordon" }
func (Uncordon) Doc() string {
	return "Mark the host's Node schedulable again, if kubeplay cordoned it. A node that was cordoned before the run stays cordoned unless force: true."
}
func (Uncordon) NewParams() Params { return &UncordonParams{} }

// Check reports whether the node would be uncordoned.
func (Uncordon) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	up := p.(*UncordonParams)
	node, err := nodeName(t, up.Node)
	if err != nil {
		return Result{}, err
	}
	cordoned, ours, err := isCordoned(ctx, t, node)
	if err != nil {
		return Result{}, err
	}
	if cordoned && (ours || up.Force) {
		return Result{Changed: true, Msg: "would uncordon " + node}, nil
	}
	return Result{Msg: "would leave " + node + " as it is"}, nil
}

// Run uncordons the node.
func (Uncordon) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	up := p.(*UncordonParams)
	node, err := nodeName(t, up.Node)
	if err != nil {
		return Result{}, err
	}
	changed, msg, err := uncordonNode(ctx, t, node, up.Force)
	return Result{Changed: changed, Msg: msg}, err
}
