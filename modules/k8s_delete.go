package modules

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// K8sDelete deletes one object and waits until it is gone.
type K8sDelete struct{}

// K8sDeleteParams are k8s-delete's parameters.
type K8sDeleteParams struct {
	APIVersion  string        `yaml:"api_version" required:"true" doc:"e.g. v1, apps/v1"`
	Kind        string        `yaml:"kind" required:"true" doc:"e.g. Pod, Deployment"`
	Name        string        `yaml:"name" required:"true" doc:"the object"`
	Namespace   string        `yaml:"namespace" doc:"for namespaced kinds (default: default)"`
	Propagation string        `yaml:"propagation" default:"Background" doc:"Foreground, Background or Orphan"`
	Wait        bool          `yaml:"wait" default:"true" doc:"wait until the object is gone"`
	Timeout     time.Duration `yaml:"timeout" default:"2m" doc:"bound on the wait"`
	Interval    time.Duration `yaml:"interval" default:"1s" doc:"how often to look"`
}

// Validate checks the parameters.
func (p *K8sDeleteParams) Validate() error {
	if p.APIVersion == "" || p.Kind == "" || p.Name == "" {
		return errors.New("api_version, kind and name are required")
	}
	switch metav1.DeletionPropagation(p.Propagation) {
	case metav1.DeletePropagationForeground, metav1.DeletePropagationBackground, metav1.DeletePropagationOrphan:
	default:
		return fmt.Errorf("propagation %q: want Foreground, Background or Orphan", p.Propagation)
	}
	if err := positive(p.Timeout, p.Interval); err != nil {
		return err
	}
	return nil
}

func (K8sDelete) Name() string { return "k8s-delete" }
func (K8sDelete) Doc() string {
	return "Delete one object with a propagation policy and wait (bounded) until it is gone. Unchanged when it does not exist; --check says whether it would be deleted. Cannot be undone."
}
func (K8sDelete) NewParams() Params { return &K8sDeleteParams{} }

// LocalOnly: the step talks to the API only.
func (K8sDelete) LocalOnly() {}

// Check says whether the object exists.
func (K8sDelete) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return K8sDelete{}.Run(ctx, asCheck(t), p)
}

// Run deletes.
func (K8sDelete) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	dp := p.(*K8sDeleteParams)
	ri, ns, err := resourceFor(t, dp.APIVersion, dp.Kind, dp.Namespace)
	if err != nil {
		return Result{}, err
	}
	label := objectName(dp.Kind, ns, dp.Name)
	exists := func(ctx context.Context) (bool, error) {
		var err error
		err = kubeCall(ctx, func(ctx context.Context) error {
			_, err := ri.Get(ctx, dp.Name, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	there, err := exists(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("get %s: %w", label, err)
	}
	switch {
	case !there:
		return Result{Msg: label + " does not exist"}, nil
	case t.Check:
		return Result{Changed: true, Msg: "would delete " + label}, nil
	}
	prop := metav1.DeletionPropagation(dp.Propagation)
	err = kubeCall(ctx, func(ctx context.Context) error {
		return ri.Delete(ctx, dp.Name, metav1.DeleteOptions{PropagationPolicy: &prop})
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return Result{}, fmt.Errorf("delete %s: %w", label, err)
	}
	if dp.Wait {
		err := pollObject(ctx, t, dp.Timeout, dp.Interval, "delete "+label, func(ctx context.Context) (bool, string, error) {
			there, err := exists(ctx)
			return !there, "still there (finalizers or foreground deletion)", err
		})
		if err != nil {
			return Result{Changed: true}, err
		}
	}
	return Result{Changed: true, Msg: "deleted " + label}, nil
}
