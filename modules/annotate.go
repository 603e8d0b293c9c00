package modules

import "context"

// Annotate sets or removes annotations on the host's Node (for example
// kubeadm.alpha.kubernetes.io/cri-socket after a runtime change).
type Annotate struct{}

// AnnotateParams are annotate's parameters.
type AnnotateParams struct {
	LabelParams `yaml:",inline"`
}

// Validate checks the parameters.
func (p *AnnotateParams) Validate() error { return p.validate(false) }

func (Annotate) Name() string { return "annotate" }
func (Annotate) Doc() string {
	return "Set or remove annotations on the host's Node (or node), such as kubeadm.alpha.kubernetes.io/cri-socket. Unchanged when they already match; rollback puts the previous values back."
}
func (Annotate) NewParams() Params { return &AnnotateParams{} }

// LocalOnly: the step talks to the API only.
func (Annotate) LocalOnly() {}

// Check reports what would change.
func (Annotate) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return nodeMeta(ctx, asCheck(t), "annotations", &p.(*AnnotateParams).LabelParams)
}

// Run sets the annotations.
func (Annotate) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	return nodeMeta(ctx, t, "annotations", &p.(*AnnotateParams).LabelParams)
}

// Undo restores the previous values.
func (Annotate) Undo(ctx context.Context, t *Target, _ Params, r Result) error {
	return undoNodeMeta(ctx, t, "annotations", r)
}
