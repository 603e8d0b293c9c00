package modules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Taint adds or removes a taint on the host's Node.
type Taint struct{}

// TaintParams are taint's parameters.
type TaintParams struct {
	Node   string `yaml:"node" doc:"Node name (default: the host's node_name)"`
	Key    string `yaml:"key" required:"true" doc:"the taint's key"`
	Value  string `yaml:"value" doc:"the taint's value"`
	Effect string `yaml:"effect" doc:"NoSchedule, PreferNoSchedule or NoExecute; not given: NoSchedule with state present, and every effect of the key with state absent"`
	State  string `yaml:"state" default:"present" doc:"present or absent (absent removes the key with any effect when effect is not given)"`
}

// Validate checks the parameters.
func (p *TaintParams) Validate() error {
	if errs := validation.IsQualifiedName(p.Key); len(errs) > 0 {
		return fmt.Errorf("key %q: %s", p.Key, strings.Join(errs, "; "))
	}
	if p.State != "present" && p.State != "absent" {
		return fmt.Errorf("state %q: want present or absent", p.State)
	}
	if p.Effect == "" && p.State == "present" {
		p.Effect = string(corev1.TaintEffectNoSchedule)
	}
	switch corev1.TaintEffect(p.Effect) {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return fmt.Errorf("effect %q: want NoSchedule, PreferNoSchedule or NoExecute", p.Effect)
	}
	return nil
}

func (Taint) Name() string { return "taint" }
func (Taint) Doc() string {
	return "Add (or replace the value of) a taint key:effect on the host's Node, or remove it. The update carries the resourceVersion read, and a conflict reads the Node again. Rollback restores the taints of that key as they were."
}
func (Taint) NewParams() Params { return &TaintParams{} }

// LocalOnly: the step talks to the API only.
func (Taint) LocalOnly() {}

func (p *TaintParams) matches(x corev1.Taint) bool {
	return x.Key == p.Key && (p.Effect == "" || string(x.Effect) == p.Effect)
}

// next computes the node's new taints and whether they differ.
func (p *TaintParams) next(cur []corev1.Taint) ([]corev1.Taint, bool) {
	out := slices.DeleteFunc(slices.Clone(cur), p.matches)
	if p.State == "present" {
		out = append(out, corev1.Taint{Key: p.Key, Value: p.Value, Effect: corev1.TaintEffect(p.Effect)})
	}
	same := len(out) == len(cur)
	for i := 0; same && i < len(out); i++ {
		same = slices.ContainsFunc(cur, func(x corev1.Taint) bool {
			return x.Key == out[i].Key && x.Value == out[i].Value && x.Effect == out[i].Effect
		})
	}
	return out, !same
}

func keyTaints(ts []corev1.Taint, key string) []taintValue {
	out := []taintValue{}
	for _, x := range ts {
		if x.Key == key {
			out = append(out, taintValue{Value: x.Value, Effect: string(x.Effect)})
		}
	}
	return out
}

// taintState is taint's undo state: the key's taints before the step.
type taintState struct {
	Node     string       `json:"node"`
	Previous []taintValue `json:"previous"`
}

type taintValue struct {
	Value  string `json:"value"`
	Effect string `json:"effect"`
}

// setTaints replaces the node's taints of key through fn, with a
// resourceVersion and a re-read on conflict.
func setTaints(ctx context.Context, t *Target, node string, fn func([]corev1.Taint) ([]corev1.Taint, bool)) (before []corev1.Taint, changed bool, err error) {
	for attempt := 1; ; attempt++ {
		n, err := getNode(ctx, t, node)
		if err != nil {
			return nil, false, err
		}
		next, diff := fn(n.Spec.Taints)
		if !diff || t.Check {
			return n.Spec.Taints, diff, nil
		}
		up := n.DeepCopy()
		up.Spec.Taints = next
		err = kubeCall(ctx, func(ctx context.Context) error {
			_, err := t.Kube.CoreV1().Nodes().Update(ctx, up, metav1.UpdateOptions{})
			return err
		})
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("update taints of %s: %w", node, err)
		}
		return n.Spec.Taints, true, nil
	}
}

func (p *TaintParams) describe(node string) string {
	if p.State == "absent" {
		return fmt.Sprintf("taint %s remove %s:%s", node, p.Key, cmp.Or(p.Effect, "*"))
	}
	return fmt.Sprintf("taint %s %s=%s:%s", node, p.Key, p.Value, p.Effect)
}

// Check reports whether the taints would change.
func (Taint) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return Taint{}.Run(ctx, asCheck(t), p)
}

// Run sets the taint.
func (Taint) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	tp := p.(*TaintParams)
	node, err := nodeName(t, tp.Node)
	if err != nil {
		return Result{}, err
	}
	before, changed, err := setTaints(ctx, t, node, tp.next)
	if err != nil {
		return Result{}, err
	}
	data := asData(taintState{Node: node, Previous: keyTaints(before, tp.Key)})
	switch {
	case !changed:
		return Result{Msg: tp.describe(node) + ": already so", Data: data}, nil
	case t.Check:
		return Result{Changed: true, Msg: "would " + tp.describe(node), Data: data}, nil
	}
	return Result{Changed: true, Msg: tp.describe(node), Data: data}, nil
}

// Undo puts the key's previous taints back.
func (Taint) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	if !r.Changed {
		return nil
	}
	tp := p.(*TaintParams)
	st, err := loadState[taintState](r)
	if err != nil {
		return err
	}
	if st.Node == "" {
		return errors.New("taint: no node recorded")
	}
	_, _, err = setTaints(ctx, t, st.Node, func(cur []corev1.Taint) ([]corev1.Taint, bool) {
		out := slices.DeleteFunc(slices.Clone(cur), func(x corev1.Taint) bool { return x.Key == tp.Key })
		for _, x := range st.Previous {
			out = append(out, corev1.Taint{Key: tp.Key, Value: x.Value, Effect: corev1.TaintEffect(x.Effect)})
		}
		return out, true
	})
	return err
}
