package modules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// This file holds what k8s-apply, k8s-patch and k8s-delete share: finding
// the resource of an apiVersion/kind, and comparing objects.

// ErrNoDynamic is returned when the runner was given no dynamic client.
var ErrNoDynamic = errors.New("no Kubernetes API connection for generic objects (give --kubeconfig)")

// resourceFor resolves apiVersion/kind to the client of its resource in
// namespace (ignored for cluster-scoped kinds).
func resourceFor(t *Target, apiVersion, kind, namespace string) (dynamic.ResourceInterface, bool, error) {
	if t.Kube == nil || t.Dynamic == nil {
		return nil, false, ErrNoDynamic
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, false, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(t.Kube.Discovery()))
	m, err := mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", apiVersion, kind, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if namespace == "" {
			namespace = "default"
		}
		return t.Dynamic.Resource(m.Resource).Namespace(namespace), true, nil
	}
	return t.Dynamic.Resource(m.Resource), false, nil
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

// poll calls cond every interval until it is done, bounded by timeout;
// the error names what was still awaited.
func poll(ctx context.Context, t *Target, timeout, interval time.Duration, what string, cond func(context.Context) (bool, string, error)) error {
	deadline := t.Clock.Now().Add(timeout)
	for {
		done, why, err := cond(ctx)
		if err != nil || done {
			return err
		}
		if !t.Clock.Now().Before(deadline) {
			return fmt.Errorf("%s: not done after %s: %s", what, timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Clock.After(interval):
		}
	}
}
