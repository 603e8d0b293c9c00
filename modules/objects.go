package modules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/kubeplay/kubeplay/eval"
)

// This file holds what k8s-apply, k8s-patch and k8s-delete share: finding
// the resource of an apiVersion/kind, and comparing objects.

// ErrNoDynamic is returned when the runner was given no dynamic client.
var ErrNoDynamic = errors.New("no Kubernetes API connection for generic objects (give --kubeconfig)")

// resolver finds the resource of an apiVersion/kind. One is made per step:
// it holds the discovery cache, so a manifest of many objects discovers
// the API once.
type resolver struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newResolver(t *Target) (*resolver, error) {
	if t.Kube == nil || t.Dynamic == nil {
		return nil, ErrNoDynamic
	}
	return &resolver{dyn: t.Dynamic, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(t.Kube.Discovery()))}, nil
}

// resource returns the client of the kind's resource and the namespace it
// acts in: namespace (default "default") for namespaced kinds, "" for
// cluster-scoped ones.
func (r *resolver) resource(apiVersion, kind, namespace string) (dynamic.ResourceInterface, string, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, "", fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	m, err := r.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", apiVersion, kind, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := cmp.Or(namespace, "default")
		return r.dyn.Resource(m.Resource).Namespace(ns), ns, nil
	}
	return r.dyn.Resource(m.Resource), "", nil
}

// resourceFor resolves one kind with a resolver of its own.
func resourceFor(t *Target, apiVersion, kind, namespace string) (dynamic.ResourceInterface, string, error) {
	r, err := newResolver(t)
	if err != nil {
		return nil, "", err
	}
	return r.resource(apiVersion, kind, namespace)
}

// objectName is "Kind ns/name" for messages.
func objectName(kind, namespace, name string) string {
	if namespace != "" {
		return kind + " " + namespace + "/" + name
	}
	return kind + " " + name
}

// sameContent compares two objects without the fields the server keeps
// for itself (resourceVersion, managedFields, generation, status, ...).
func sameContent(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy().Object
		delete(c, "status")
		if md, ok := c["metadata"].(map[string]any); ok {
			for _, k := range []string{"resourceVersion", "managedFields", "generation", "uid", "creationTimestamp", "selfLink"} {
				delete(md, k)
			}
		}
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// pollObject polls look every interval, bounded by timeout; the error
// names what was still awaited.
func pollObject(ctx context.Context, t *Target, timeout, interval time.Duration, what string, look func(context.Context) (bool, string, error)) error {
	err := poll(ctx, t.Clock, pollSpec{Timeout: timeout, Interval: interval}, look)
	return expired(err, func(nd *NotDone) error { return fmt.Errorf("%s: %w", what, nd) })
}

// whereEnv is the environment of a `where` expression: the object, as a
// map (obj.metadata.name, obj.spec.storageClassName, ...).
type whereEnv struct {
	Obj map[string]any `expr:"obj"`
}

// compileWhere compiles a `where` filter; "" is no filter.
func compileWhere(src string) (*eval.Expr, error) {
	if src == "" {
		return nil, nil
	}
	x, err := eval.NewCompiler(reflect.TypeOf(whereEnv{})).CompileBool(src)
	if err != nil {
		return nil, fmt.Errorf("where: %w", err)
	}
	return x, nil
}

// objectQuery selects objects of one kind: in a namespace or all of them,
// by label selector and a `where` expression.
type objectQuery struct {
	APIVersion    string
	Kind          string
	Namespace     string
	AllNamespaces bool
	LabelSelector string
	Where         *eval.Expr
}

// list returns the matching objects, resolving the kind through r.
func (q objectQuery) list(ctx context.Context, r *resolver) ([]unstructured.Unstructured, error) {
	gv, err := schema.ParseGroupVersion(q.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %w", q.APIVersion, err)
	}
	m, err := r.mapper.RESTMapping(gv.WithKind(q.Kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", q.APIVersion, q.Kind, err)
	}
	rc := r.dyn.Resource(m.Resource)
	var lister dynamic.ResourceInterface = rc
	if m.Scope.Name() == meta.RESTScopeNameNamespace && !q.AllNamespaces {
		lister = rc.Namespace(cmp.Or(q.Namespace, "default"))
	}
	var l *unstructured.UnstructuredList
	if err := kubeCall(ctx, func(ctx context.Context) (err error) {
		l, err = lister.List(ctx, metav1.ListOptions{LabelSelector: q.LabelSelector})
		return err
	}); err != nil {
		return nil, fmt.Errorf("list %s: %w", q.Kind, err)
	}
	var out []unstructured.Unstructured
	for _, o := range l.Items {
		ok, err := q.matches(&o)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// matches applies the where expression to one object.
func (q objectQuery) matches(o *unstructured.Unstructured) (bool, error) {
	if q.Where == nil {
		return true, nil
	}
	ok, err := q.Where.EvalBool(whereEnv{Obj: o.Object})
	if err != nil {
		return false, fmt.Errorf("where on %s: %w", objectName(q.Kind, o.GetNamespace(), o.GetName()), err)
	}
	return ok, nil
}
