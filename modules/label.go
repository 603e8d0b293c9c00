package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Label sets or removes labels on the host's Node.
type Label struct{}

// LabelParams are label's parameters; annotate uses the same shape.
type LabelParams struct {
	Node   string            `yaml:"node" doc:"Node name (default: the host's node_name)"`
	Set    map[string]string `yaml:"set" doc:"keys and values to set"`
	Remove []string          `yaml:"remove" doc:"keys to remove"`
}

// Validate checks the parameters.
func (p *LabelParams) Validate() error { return p.validate(true) }

func (p *LabelParams) validate(labels bool) error {
	if len(p.Set) == 0 && len(p.Remove) == 0 {
		return errors.New("give set or remove")
	}
	for k, v := range p.Set {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("key %q: %s", k, strings.Join(errs, "; "))
		}
		if labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return fmt.Errorf("value of %s %q: %s", k, v, strings.Join(errs, "; "))
			}
		}
	}
	for _, k := range p.Remove {
		if _, both := p.Set[k]; both {
			return fmt.Errorf("%s is both set and removed", k)
		}
	}
	return nil
}

func (Label) Name() string { return "label" }
func (Label) Doc() string {
	return "Set or remove labels on the host's Node (or node). Unchanged when they already match; rollback puts the previous values back."
}
func (Label) NewParams() Params { return &LabelParams{} }

// LocalOnly: the step talks to the API only.
func (Label) LocalOnly() {}

// Check reports what would change.
func (Label) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return nodeMeta(ctx, asCheck(t), "labels", p.(*LabelParams))
}

// Run sets the labels.
func (Label) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	return nodeMeta(ctx, t, "labels", p.(*LabelParams))
}

// Undo restores the previous values.
func (Label) Undo(ctx context.Context, t *Target, _ Params, r Result) error {
	return undoNodeMeta(ctx, t, "labels", r)
}

// nodeMeta sets and removes keys of a Node's labels or annotations with a
// merge patch, recording the previous values.
func nodeMeta(ctx context.Context, t *Target, field string, p *LabelParams) (Result, error) {
	node, err := nodeName(t, p.Node)
	if err != nil {
		return Result{}, err
	}
	n, err := getNode(ctx, t, node)
	if err != nil {
		return Result{}, err
	}
	cur := n.Labels
	if field == "annotations" {
		cur = n.Annotations
	}
	patch := map[string]any{}
	previous := map[string]*string{}
	var what []string
	for _, k := range sortedStringKeys(p.Set) {
		if old, ok := cur[k]; !ok || old != p.Set[k] {
			patch[k] = p.Set[k]
			previous[k] = nilIfMissing(cur, k)
			what = append(what, k+"="+p.Set[k])
		}
	}
	for _, k := range p.Remove {
		if _, ok := cur[k]; ok {
			patch[k] = nil
			previous[k] = nilIfMissing(cur, k)
			what = append(what, k+"-")
		}
	}
	data := asData(nodeMetaState{Node: node, Previous: previous})
	if len(patch) == 0 {
		return Result{Msg: fmt.Sprintf("%s %s up to date", node, field), Data: data}, nil
	}
	msg := fmt.Sprintf("%s %s: %s", node, field, strings.Join(what, ", "))
	if t.Check {
		return Result{Changed: true, Msg: "would set " + msg, Data: data}, nil
	}
	if err := patchNodeMeta(ctx, t, node, field, patch); err != nil {
		return Result{}, err
	}
	return Result{Changed: true, Msg: "set " + msg, Data: data}, nil
}

func patchNodeMeta[V any](ctx context.Context, t *Target, node, field string, patch map[string]V) error {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{field: patch}})
	if err := patchNode(ctx, t, node, b); err != nil {
		return fmt.Errorf("patch node %s %s: %w", node, field, err)
	}
	return nil
}

func undoNodeMeta(ctx context.Context, t *Target, field string, r Result) error {
	if !r.Changed {
		return nil
	}
	st, err := loadState[nodeMetaState](r)
	if err != nil || st.Node == "" || len(st.Previous) == 0 {
		return err
	}
	return patchNodeMeta(ctx, t, st.Node, field, st.Previous)
}

// nodeMetaState is label's and annotate's undo state: each key's value
// before the step, null for a key it added.
type nodeMetaState struct {
	Node     string             `json:"node"`
	Previous map[string]*string `json:"previous"`
}

func nilIfMissing(m map[string]string, k string) *string {
	if v, ok := m[k]; ok {
		return &v
	}
	return nil
}

func sortedStringKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
