package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// K8sRewrite reads every object of some resources and writes it back
// unchanged, so that the API server stores it again with its current
// storage settings: the new encryption provider or key (the docs'
// `kubectl get secrets -A -o json | kubectl replace -f -`), or a new
// storage version.
type K8sRewrite struct{}

// K8sRewriteParams are k8s-rewrite's parameters.
type K8sRewriteParams struct {
	Resources   []string `yaml:"resources" required:"true" doc:"resources as resource or resource.group (secrets, configmaps, deployments.apps)"`
	Namespace   string   `yaml:"namespace" doc:"only this namespace (default: every namespace)"`
	Concurrency int      `yaml:"concurrency" default:"4" doc:"objects written at once"`
	PageSize    int64    `yaml:"page_size" default:"500" doc:"objects per list call"`
}

// Validate checks the parameters.
func (p *K8sRewriteParams) Validate() error {
	if len(p.Resources) == 0 {
		return errors.New("resources is required")
	}
	for _, r := range p.Resources {
		if r == "" || strings.ContainsAny(r, "/ ") {
			return fmt.Errorf("resource %q: want resource or resource.group", r)
		}
	}
	if p.Concurrency <= 0 || p.PageSize <= 0 {
		return errors.New("concurrency and page_size must be positive")
	}
	return nil
}

func (K8sRewrite) Name() string { return "k8s-rewrite" }
func (K8sRewrite) Doc() string {
	return "Read every object of the resources (paged) and write it back unchanged, so the API server stores it again with its current storage settings: after an encryption provider or key change, or a storage version change. The server skips the write of an object already stored as it would store it now, so changed counts the objects whose resourceVersion moved. An object changed or deleted meanwhile was stored anew by that write and is skipped. --check counts the objects."
}
func (K8sRewrite) NewParams() Params { return &K8sRewriteParams{} }

// LocalOnly: the step talks to the API only.
func (K8sRewrite) LocalOnly() {}

// rewriteCount is one resource's outcome.
type rewriteCount struct {
	listed, rewritten, skipped atomic.Int64
}

// Check counts the objects a run would write back.
func (m K8sRewrite) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.walk(ctx, t, p.(*K8sRewriteParams), false)
}

// Run writes every object back.
func (m K8sRewrite) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.walk(ctx, t, p.(*K8sRewriteParams), true)
}

func (K8sRewrite) walk(ctx context.Context, t *Target, p *K8sRewriteParams, write bool) (Result, error) {
	r, err := newResolver(t)
	if err != nil {
		return Result{}, err
	}
	data := map[string]any{}
	var msgs []string
	var total int64
	for _, res := range p.Resources {
		gvr, namespaced, err := resolveResource(r, res)
		if err != nil {
			return Result{}, err
		}
		var list dynamic.ResourceInterface = r.dyn.Resource(gvr)
		if namespaced && p.Namespace != "" {
			list = r.dyn.Resource(gvr).Namespace(p.Namespace)
		}
		n := &rewriteCount{}
		err = p.pages(ctx, list, func(items []unstructured.Unstructured) error {
			n.listed.Add(int64(len(items)))
			if !write {
				return nil
			}
			return p.rewrite(ctx, r.dyn.Resource(gvr), namespaced, items, n)
		})
		data[res] = map[string]any{"listed": n.listed.Load(), "rewritten": n.rewritten.Load(), "skipped": n.skipped.Load()}
		if err != nil {
			return Result{Changed: n.rewritten.Load() > 0, Data: data}, fmt.Errorf("rewrite %s: %w", res, err)
		}
		if write {
			total += n.rewritten.Load()
			msgs = append(msgs, fmt.Sprintf("%s: %d of %d stored anew", res, n.rewritten.Load(), n.listed.Load()))
		} else {
			total += n.listed.Load()
			msgs = append(msgs, fmt.Sprintf("%s: would write back %d", res, n.listed.Load()))
		}
	}
	return Result{Changed: total > 0, Msg: strings.Join(msgs, "; "), Data: data}, nil
}

// resolveResource finds a resource's preferred version and scope.
func resolveResource(r *resolver, res string) (schema.GroupVersionResource, bool, error) {
	gvr, err := r.mapper.ResourceFor(schema.ParseGroupResource(res).WithVersion(""))
	if err != nil {
		return gvr, false, fmt.Errorf("resource %s: %w", res, err)
	}
	gvk, err := r.mapper.KindFor(gvr)
	if err != nil {
		return gvr, false, fmt.Errorf("resource %s: %w", res, err)
	}
	m, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return gvr, false, fmt.Errorf("resource %s: %w", res, err)
	}
	return gvr, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// pages lists the resource page by page.
func (p *K8sRewriteParams) pages(ctx context.Context, ri dynamic.ResourceInterface, each func([]unstructured.Unstructured) error) error {
	cont := ""
	for {
		var l *unstructured.UnstructuredList
		if err := kubeCall(ctx, func(ctx context.Context) (err error) {
			l, err = ri.List(ctx, metav1.ListOptions{Limit: p.PageSize, Continue: cont})
			return err
		}); err != nil {
			return fmt.Errorf("list: %w", err)
		}
		if err := each(l.Items); err != nil {
			return err
		}
		if cont = l.GetContinue(); cont == "" {
			return nil
		}
	}
}

// rewrite writes a page of objects back, p.Concurrency at a time; the first
// error stops the page.
func (p *K8sRewriteParams) rewrite(ctx context.Context, rc dynamic.NamespaceableResourceInterface, namespaced bool, items []unstructured.Unstructured, n *rewriteCount) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, p.Concurrency)
	for i := range items {
		obj := &items[i]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			var ri dynamic.ResourceInterface = rc
			if namespaced {
				ri = rc.Namespace(obj.GetNamespace())
			}
			var out *unstructured.Unstructured
			err := kubeCall(ctx, func(ctx context.Context) (err error) {
				out, err = ri.Update(ctx, obj, metav1.UpdateOptions{})
				return err
			})
			switch {
			case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
				// written or deleted since the list: stored anew already
				n.skipped.Add(1)
			case err != nil:
				once.Do(func() {
					first = fmt.Errorf("write back %s: %w", objectName(obj.GetKind(), obj.GetNamespace(), obj.GetName()), err)
					cancel()
				})
			case out.GetResourceVersion() != obj.GetResourceVersion():
				n.rewritten.Add(1)
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
