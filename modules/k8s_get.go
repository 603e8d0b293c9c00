package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// K8sGet reads objects of one kind (by name, label selector and a `where`
// expression) into registered data, for the assertions and decisions of
// later steps.
type K8sGet struct{}

// K8sGetParams are k8s-get's parameters.
type K8sGetParams struct {
	APIVersion    string `yaml:"api_version" required:"true" doc:"e.g. v1, storage.k8s.io/v1"`
	Kind          string `yaml:"kind" required:"true" doc:"e.g. StorageClass, PersistentVolume"`
	Name          string `yaml:"name" doc:"one object (missing: the step fails, unless missing_ok)"`
	Namespace     string `yaml:"namespace" doc:"for namespaced kinds (default: default)"`
	AllNamespaces bool   `yaml:"all_namespaces" doc:"namespaced kinds: every namespace"`
	LabelSelector string `yaml:"label_selector" doc:"e.g. app=web"`
	Where         string `yaml:"where" doc:"an expression over obj that must be true, e.g. 'obj.spec.storageClassName == \"fast\"'"`
	MissingOK     bool   `yaml:"missing_ok" doc:"with name: a missing object is no error (data.count 0)"`

	query objectQuery
}

// Validate checks the parameters.
func (p *K8sGetParams) Validate() error {
	if p.APIVersion == "" || p.Kind == "" {
		return errors.New("api_version and kind are required")
	}
	if p.Kind == "Secret" {
		// their data would reach registered results, events and journals
		return errors.New("k8s-get does not read Secrets")
	}
	if p.Name != "" && (p.LabelSelector != "" || p.AllNamespaces) {
		return errors.New("name goes without label_selector and all_namespaces")
	}
	w, err := compileWhere(p.Where)
	if err != nil {
		return err
	}
	p.query = objectQuery{APIVersion: p.APIVersion, Kind: p.Kind, Namespace: p.Namespace, AllNamespaces: p.AllNamespaces, LabelSelector: p.LabelSelector, Where: w}
	return nil
}

func (K8sGet) Name() string { return "k8s-get" }
func (K8sGet) Doc() string {
	return "Read objects of one kind - one by name, or a list by label selector, namespace (or all) and a where expression over obj - into data.items (the objects), data.names and data.count, for later assertions and decisions. Changes nothing. Secrets are refused: their data would reach registered results."
}
func (K8sGet) NewParams() Params { return &K8sGetParams{} }

// LocalOnly: the step talks to the API only.
func (K8sGet) LocalOnly() {}

// Check is Run: the step only reads.
func (m K8sGet) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.Run(ctx, t, p)
}

// Run reads.
func (K8sGet) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	gp := p.(*K8sGetParams)
	var items []unstructured.Unstructured
	if gp.Name != "" {
		ri, ns, err := resourceFor(t, gp.APIVersion, gp.Kind, gp.Namespace)
		if err != nil {
			return Result{}, err
		}
		var o *unstructured.Unstructured
		err = kubeCall(ctx, func(ctx context.Context) (err error) {
			o, err = ri.Get(ctx, gp.Name, metav1.GetOptions{})
			return err
		})
		switch {
		case apierrors.IsNotFound(err) && gp.MissingOK:
		case err != nil:
			return Result{}, fmt.Errorf("get %s: %w", objectName(gp.Kind, ns, gp.Name), err)
		default:
			ok, err := gp.query.matches(o)
			if err != nil {
				return Result{}, err
			}
			if ok {
				items = []unstructured.Unstructured{*o}
			}
		}
	} else {
		r, err := newResolver(t)
		if err != nil {
			return Result{}, err
		}
		if items, err = gp.query.list(ctx, r); err != nil {
			return Result{}, err
		}
	}
	objs := make([]any, 0, len(items))
	names := make([]any, 0, len(items))
	for _, o := range items {
		objs = append(objs, o.Object)
		names = append(names, qualified(o))
	}
	msg := fmt.Sprintf("%d %s", len(items), gp.Kind)
	if len(items) > 0 && len(items) <= 5 {
		var ns []string
		for _, n := range names {
			ns = append(ns, n.(string))
		}
		msg += ": " + strings.Join(ns, ", ")
	}
	return Result{Msg: msg, Data: map[string]any{"items": objs, "names": names, "count": len(items)}}, nil
}

// qualified is ns/name for namespaced objects, name otherwise.
func qualified(o unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetName()
}
