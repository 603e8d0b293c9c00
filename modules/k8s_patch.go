package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// K8sPatch patches one object (merge, strategic or JSON patch), optionally
// a subresource such as status.
type K8sPatch struct{}

// K8sPatchParams are k8s-patch's parameters.
type K8sPatchParams struct {
	APIVersion  string `yaml:"api_version" required:"true" doc:"e.g. v1, apps/v1"`
	Kind        string `yaml:"kind" required:"true" doc:"e.g. Node, Deployment"`
	Name        string `yaml:"name" doc:"the object (default for Node: the host's node)"`
	Namespace   string `yaml:"namespace" doc:"for namespaced kinds (default: default)"`
	Type        string `yaml:"type" default:"merge" doc:"merge, strategic or json"`
	Patch       any    `yaml:"patch" required:"true" doc:"the patch: a mapping (merge, strategic) or a list of operations (json)"`
	Subresource string `yaml:"subresource" doc:"e.g. status (extended resources on a Node's capacity)"`
	// many objects at once
	AllNamespaces bool   `yaml:"all_namespaces" doc:"without name: namespaced kinds in every namespace"`
	LabelSelector string `yaml:"label_selector" doc:"without name: patch every object with these labels"`
	Where         string `yaml:"where" doc:"without name: patch every object for which this expression over obj is true, e.g. 'obj.spec.claimRef?.namespace == \"shop\"'"`

	query *objectQuery
}

// Validate checks the parameters.
func (p *K8sPatchParams) Validate() error {
	if p.APIVersion == "" || p.Kind == "" {
		return errors.New("api_version and kind are required")
	}
	bulk := p.LabelSelector != "" || p.Where != "" || p.AllNamespaces
	switch {
	case p.Name != "" && bulk:
		return errors.New("name, or label_selector/where/all_namespaces for many objects: not both")
	case p.Name == "" && !bulk && p.Kind != "Node":
		return errors.New("name is required (or label_selector/where for many objects)")
	case bulk && p.Subresource != "":
		return errors.New("subresource goes with one object (name)")
	case bulk:
		w, err := compileWhere(p.Where)
		if err != nil {
			return err
		}
		p.query = &objectQuery{APIVersion: p.APIVersion, Kind: p.Kind, Namespace: p.Namespace, AllNamespaces: p.AllNamespaces, LabelSelector: p.LabelSelector, Where: w}
	}
	switch p.Type {
	case "merge", "strategic":
		if _, ok := p.Patch.(map[string]any); !ok {
			return fmt.Errorf("a %s patch is a mapping", p.Type)
		}
	case "json":
		if _, ok := p.Patch.([]any); !ok {
			return errors.New("a json patch is a list of operations")
		}
	default:
		return fmt.Errorf("type %q: want merge, strategic or json", p.Type)
	}
	return nil
}

func (K8sPatch) Name() string { return "k8s-patch" }
func (K8sPatch) Doc() string {
	return "Patch one object (merge, strategic or json), or its subresource (status: for example an extended resource in a Node's capacity); or, with label_selector and/or where (an expression over obj) instead of a name, every matching object, one at a time (data.patched names those that changed). Changed when the server's object changed; --check is a server-side dry run. Not undone on rollback: write the reverse patch as a rollback step."
}
func (K8sPatch) NewParams() Params { return &K8sPatchParams{} }

// LocalOnly: the step talks to the API only.
func (K8sPatch) LocalOnly() {}

// Check is a server-side dry run.
func (K8sPatch) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return K8sPatch{}.Run(ctx, asCheck(t), p)
}

// Run patches.
func (K8sPatch) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	pp := p.(*K8sPatchParams)
	// one resolver for the step: a bulk patch discovers the API once
	r, err := newResolver(t)
	if err != nil {
		return Result{}, err
	}
	if pp.query != nil {
		return pp.patchAll(ctx, t, r)
	}
	name := pp.Name
	if name == "" {
		if name, err = nodeName(t, ""); err != nil {
			return Result{}, err
		}
	}
	return pp.patchOne(ctx, t, r, name, pp.Namespace)
}

// patchOne patches one object.
func (pp *K8sPatchParams) patchOne(ctx context.Context, t *Target, r *resolver, name, namespace string) (Result, error) {
	ri, ns, err := r.resource(pp.APIVersion, pp.Kind, namespace)
	if err != nil {
		return Result{}, err
	}
	label := objectName(pp.Kind, ns, name)
	var subs []string
	if pp.Subresource != "" {
		subs = []string{pp.Subresource}
		label += " " + pp.Subresource
	}
	var before *unstructured.Unstructured
	if err := kubeCall(ctx, func(ctx context.Context) (err error) {
		before, err = ri.Get(ctx, name, metav1.GetOptions{}, subs...)
		return err
	}); err != nil {
		return Result{}, fmt.Errorf("get %s: %w", label, err)
	}
	body, err := json.Marshal(pp.Patch)
	if err != nil {
		return Result{}, err
	}
	pt := map[string]types.PatchType{"merge": types.MergePatchType, "strategic": types.StrategicMergePatchType, "json": types.JSONPatchType}[pp.Type]
	opts := metav1.PatchOptions{FieldManager: "kubeplay"}
	if t.Check {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var after *unstructured.Unstructured
	if err := kubeCall(ctx, func(ctx context.Context) (err error) {
		after, err = ri.Patch(ctx, name, pt, body, opts, subs...)
		return err
	}); err != nil {
		return Result{}, fmt.Errorf("patch %s: %w", label, err)
	}
	changed := before.GetResourceVersion() != after.GetResourceVersion()
	if t.Check || pp.Subresource != "" {
		// a dry run keeps the resourceVersion; compare the content
		changed = !sameContent(before, after) || statusDiffers(before, after)
	}
	switch {
	case !changed:
		return Result{Msg: label + " already so"}, nil
	case t.Check:
		return Result{Changed: true, Msg: "would patch " + label}, nil
	}
	return Result{Changed: true, Msg: "patched " + label}, nil
}

func statusDiffers(a, b *unstructured.Unstructured) bool {
	sa, _, _ := unstructured.NestedMap(a.Object, "status")
	sb, _, _ := unstructured.NestedMap(b.Object, "status")
	return fmt.Sprint(sa) != fmt.Sprint(sb)
}

// patchAll patches every object the query selects, one at a time.
func (pp *K8sPatchParams) patchAll(ctx context.Context, t *Target, rs *resolver) (Result, error) {
	objs, err := pp.query.list(ctx, rs)
	if err != nil {
		return Result{}, err
	}
	patched := []any{}
	for _, o := range objs {
		r, err := pp.patchOne(ctx, t, rs, o.GetName(), o.GetNamespace())
		if err != nil {
			return Result{Changed: len(patched) > 0, Data: map[string]any{"patched": patched}}, err
		}
		if r.Changed {
			patched = append(patched, qualified(o))
		}
	}
	verb := "patched"
	if t.Check {
		verb = "would patch"
	}
	msg := fmt.Sprintf("%d %s matched, none needed the patch", len(objs), pp.Kind)
	if len(patched) > 0 {
		msg = fmt.Sprintf("%s %d of %d %s matched", verb, len(patched), len(objs), pp.Kind)
	}
	return Result{Changed: len(patched) > 0, Msg: msg, Data: map[string]any{"patched": patched, "matched": len(objs)}}, nil
}
