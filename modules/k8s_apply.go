package modules

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// K8sApply server-side applies manifests.
type K8sApply struct{}

// K8sApplyParams are k8s-apply's parameters.
type K8sApplyParams struct {
	Manifest     string        `yaml:"manifest" doc:"YAML manifests (several documents allowed)"`
	File         string        `yaml:"file" runner:"path" doc:"a manifest file on the runner machine (~ is the runner's home)"`
	Namespace    string        `yaml:"namespace" doc:"namespace for namespaced objects that name none (default: default)"`
	FieldManager string        `yaml:"field_manager" default:"kubeplay" doc:"the server-side apply field manager"`
	Force        bool          `yaml:"force" doc:"take over fields another manager owns (force conflicts)"`
	WaitFor      []WaitObject  `yaml:"wait_for" doc:"applied objects to wait for, each until a status condition is True"`
	Timeout      time.Duration `yaml:"timeout" default:"5m" doc:"bound on each wait"`
	Interval     time.Duration `yaml:"interval" default:"2s" doc:"how often to look"`
}

// WaitObject names an applied object and the condition to wait for.
type WaitObject struct {
	Kind      string `yaml:"kind" required:"true" doc:"the object's kind (Deployment, CustomResourceDefinition, ...)"`
	Name      string `yaml:"name" required:"true" doc:"the object's name"`
	Condition string `yaml:"condition" required:"true" doc:"the status condition that must be True (Available, Established, Ready)"`
}

// Validate checks the parameters.
func (p *K8sApplyParams) Validate() error {
	for i, w := range p.WaitFor {
		if w.Kind == "" || w.Name == "" || w.Condition == "" {
			return fmt.Errorf("wait_for[%d]: kind, name and condition are required", i)
		}
	}
	if (p.Manifest == "") == (p.File == "") {
		return errors.New("give manifest or file, one of them")
	}
	if p.File != "" {
		if err := checkRunnerFile(p.File); err != nil {
			return err
		}
	}
	if err := required("field_manager", p.FieldManager); err != nil {
		return err
	}
	if err := positive(p.Timeout, p.Interval); err != nil {
		return err
	}
	if p.Manifest != "" {
		objs, err := decodeManifests(p.Manifest)
		if err != nil {
			return err
		}
		for _, w := range p.WaitFor {
			if findObject(objs, w) == nil {
				return fmt.Errorf("wait_for: the manifest has no %s %s", w.Kind, w.Name)
			}
		}
	}
	return nil
}

func findObject(objs []*unstructured.Unstructured, w WaitObject) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == w.Kind && o.GetName() == w.Name {
			return o
		}
	}
	return nil
}

func (K8sApply) Name() string { return "k8s-apply" }
func (K8sApply) Doc() string {
	return "Server-side apply YAML manifests (inline or a runner file) with field manager kubeplay; changed when the server's object changed; --check is a server-side dry run compared with the live objects; wait_for waits (bounded) for a status condition on named objects. Rollback deletes the objects the step created (objects it updated are reported, not reverted)."
}
func (K8sApply) NewParams() Params { return &K8sApplyParams{} }

// LocalOnly: the step talks to the API only.
func (K8sApply) LocalOnly() {}

// decodeManifests splits YAML documents into objects.
func decodeManifests(text string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", i, err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("manifest document %d: apiVersion, kind and metadata.name are required", i)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("the manifest holds no objects")
	}
	return out, nil
}

func (p *K8sApplyParams) objects() ([]*unstructured.Unstructured, error) {
	text := p.Manifest
	if p.File != "" {
		var err error
		if text, err = readRunnerFile(p.File); err != nil {
			return nil, err
		}
	}
	return decodeManifests(text)
}

// applyOne applies obj (dry run in check mode) and reports whether it was
// created, changed, and its resulting object.
// newNS are namespaces a --check run would create earlier in the same
// manifest: objects in them cannot be dry-run and would be created.
func (p *K8sApplyParams) applyOne(ctx context.Context, t *Target, res *resolver, obj *unstructured.Unstructured, newNS map[string]bool) (created, changed bool, label string, err error) {
	ri, ns, err := res.resource(obj.GetAPIVersion(), obj.GetKind(), cmp.Or(obj.GetNamespace(), p.Namespace))
	if err != nil {
		return false, false, "", err
	}
	if ns != "" {
		obj.SetNamespace(ns)
	}
	label = objectName(obj.GetKind(), ns, obj.GetName())
	if t.Check && ns != "" && !newNS[ns] {
		// a namespace an earlier step of the run would create: the dry
		// run cannot place the object there, and it would be created
		_, err := t.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			newNS[ns] = true
		}
	}
	if t.Check && newNS[ns] {
		return true, true, label + " (namespace " + ns + " not there yet)", nil
	}
	var live *unstructured.Unstructured
	err = kubeCall(ctx, func(ctx context.Context) (err error) {
		live, err = ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, false, label, fmt.Errorf("get %s: %w", label, err)
	}
	exists := err == nil
	body, err := obj.MarshalJSON()
	if err != nil {
		return false, false, label, err
	}
	opts := metav1.PatchOptions{FieldManager: p.FieldManager, Force: &p.Force}
	if t.Check {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var out *unstructured.Unstructured
	err = kubeCall(ctx, func(ctx context.Context) (err error) {
		out, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, opts)
		return err
	})
	if err != nil {
		return false, false, label, fmt.Errorf("apply %s: %w", label, err)
	}
	if !exists {
		return true, true, label, nil
	}
	return false, !sameContent(live, out), label, nil
}

// Check is a server-side dry run.
func (K8sApply) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return K8sApply{}.Run(ctx, asCheck(t), p)
}

// Run applies the manifests.
func (K8sApply) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	ap := p.(*K8sApplyParams)
	objs, err := ap.objects()
	if err != nil {
		return Result{}, err
	}
	var created, updated, same []string
	st := applyState{Created: []objectRef{}, Updated: []string{}}
	rs, err := newResolver(t)
	if err != nil {
		return Result{}, err
	}
	newNS := map[string]bool{}
	for _, obj := range objs {
		c, ch, label, err := ap.applyOne(ctx, t, rs, obj, newNS)
		if err != nil {
			return Result{Changed: len(created)+len(updated) > 0, Data: asData(st)}, err
		}
		switch {
		case c:
			if obj.GetKind() == "Namespace" && obj.GetAPIVersion() == "v1" {
				newNS[obj.GetName()] = true
			}
			created = append(created, label)
			st.Created = append(st.Created, objectRef{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()})
		case ch:
			updated = append(updated, label)
			st.Updated = append(st.Updated, label)
		default:
			same = append(same, label)
		}
	}
	data := asData(st)
	verb := func(s string) string {
		if t.Check {
			return "would be " + s
		}
		return s
	}
	var parts []string
	for _, x := range []struct {
		what  string
		names []string
	}{{verb("created"), created}, {verb("configured"), updated}, {"unchanged", same}} {
		if len(x.names) > 0 {
			parts = append(parts, x.what+": "+strings.Join(x.names, ", "))
		}
	}
	res := Result{Changed: len(created)+len(updated) > 0, Msg: strings.Join(parts, "; "), Data: data}
	if t.Check {
		return res, nil
	}
	for _, w := range ap.WaitFor {
		obj := findObject(objs, w)
		if obj == nil {
			return res, fmt.Errorf("wait_for: the manifest has no %s %s", w.Kind, w.Name)
		}
		if err := ap.waitCondition(ctx, t, rs, obj, w.Condition); err != nil {
			return res, err
		}
	}
	return res, nil
}

// waitCondition waits until obj has status condition cond True.
func (p *K8sApplyParams) waitCondition(ctx context.Context, t *Target, res *resolver, obj *unstructured.Unstructured, cond string) error {
	ri, _, err := res.resource(obj.GetAPIVersion(), obj.GetKind(), obj.GetNamespace())
	if err != nil {
		return err
	}
	label := objectName(obj.GetKind(), obj.GetNamespace(), obj.GetName())
	return pollObject(ctx, t, p.Timeout, p.Interval, label+" "+cond, func(ctx context.Context) (bool, string, error) {
		live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == cond {
				return m["status"] == "True", fmt.Sprintf("%s is %v: %v", cond, m["status"], m["message"]), nil
			}
		}
		return false, "no " + cond + " condition yet", nil
	})
}

// Undo deletes what the step created; updates are not reverted.
func (K8sApply) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	st, err := loadState[applyState](r)
	if err != nil {
		return err
	}
	res, err := newResolver(t)
	if err != nil {
		return err
	}
	for _, c := range st.Created {
		ri, _, err := res.resource(c.APIVersion, c.Kind, c.Namespace)
		if err != nil {
			return err
		}
		err = kubeCall(ctx, func(ctx context.Context) error {
			return ri.Delete(ctx, c.Name, metav1.DeleteOptions{})
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", objectName(c.Kind, c.Namespace, c.Name), err)
		}
	}
	if len(st.Updated) > 0 {
		return fmt.Errorf("k8s-apply cannot revert its updates of %v", st.Updated)
	}
	return nil
}

// applyState is k8s-apply's undo state: the objects it created (deleted by
// Undo) and those it updated (which Undo cannot revert).
type applyState struct {
	Created []objectRef `json:"created"`
	Updated []string    `json:"updated"`
}

type objectRef struct {
	APIVersion string `json:"api_version"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
}
