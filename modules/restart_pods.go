package modules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// RestartPods deletes the pods of a selector one at a time, waiting for each
// replacement to be Ready before the next (kube-proxy, CoreDNS after a
// ConfigMap change).
type RestartPods struct{}

// RestartPodsParams are restart-pods' parameters.
type RestartPodsParams struct {
	Namespace string        `yaml:"namespace" default:"kube-system" doc:"the pods' namespace"`
	Selector  string        `yaml:"selector" required:"true" doc:"label selector, e.g. k8s-app=kube-proxy"`
	Timeout   time.Duration `yaml:"timeout" default:"5m" doc:"how long each replacement may take to be Ready"`
	Interval  time.Duration `yaml:"interval" default:"2s" doc:"how often to look"`

	sel labels.Selector
}

// Validate checks the parameters.
func (p *RestartPodsParams) Validate() error {
	if err := required("namespace", p.Namespace); err != nil {
		return err
	}
	sel, err := labels.Parse(p.Selector)
	if err != nil || p.Selector == "" {
		return fmt.Errorf("selector %q: a label selector is required", p.Selector)
	}
	p.sel = sel
	return positive(p.Timeout, p.Interval)
}

func (RestartPods) Name() string { return "restart-pods" }
func (RestartPods) Doc() string {
	return "Restart the pods of a selector one at a time: delete one, wait (bounded) until it is gone and as many pods as before are Ready again, then the next. Refuses when they are not all Ready to begin with. Cannot be undone."
}
func (RestartPods) NewParams() Params { return &RestartPodsParams{} }

// LocalOnly: the step talks to the API only.
func (RestartPods) LocalOnly() {}

func (p *RestartPodsParams) list(ctx context.Context, t *Target) ([]corev1.Pod, error) {
	if t.Kube == nil {
		return nil, ErrNoCluster
	}
	var list *corev1.PodList
	if err := kubeCall(ctx, func(ctx context.Context) (err error) {
		list, err = t.Kube.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: p.sel.String()})
		return err
	}); err != nil {
		return nil, fmt.Errorf("list pods %s: %w", p.Selector, err)
	}
	var out []corev1.Pod
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			out = append(out, pod)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// matching lists the pods of the selector; done is the step's whole
// result when listing failed or nothing matches.
func (p *RestartPodsParams) matching(ctx context.Context, t *Target) (pods []corev1.Pod, done *Result, err error) {
	pods, err = p.list(ctx, t)
	switch {
	case err != nil:
		return nil, &Result{}, err
	case len(pods) == 0:
		return nil, &Result{Msg: "no pods match " + p.Selector}, nil
	}
	return pods, nil, nil
}

func names(pods []corev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

// Check lists the pods that would be restarted.
func (RestartPods) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*RestartPodsParams)
	pods, done, err := rp.matching(ctx, t)
	if done != nil {
		return *done, err
	}
	return Result{Changed: true, Msg: fmt.Sprintf("would restart %d pod(s) one at a time: %s", len(pods), strings.Join(names(pods), ", "))}, nil
}

// Run restarts the pods.
func (RestartPods) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*RestartPodsParams)
	pods, none, err := rp.matching(ctx, t)
	if none != nil {
		return *none, err
	}
	var notReady []string
	for i := range pods {
		if !podReady(&pods[i]) {
			notReady = append(notReady, pods[i].Name)
		}
	}
	if len(notReady) > 0 {
		return Result{}, fmt.Errorf("refusing to restart %s: not Ready now: %s", rp.Selector, strings.Join(notReady, ", "))
	}
	want := len(pods)
	var done []string
	for _, pod := range pods {
		uid := pod.UID
		err := kubeCall(ctx, func(ctx context.Context) error {
			return t.Kube.CoreV1().Pods(rp.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return Result{Changed: len(done) > 0, Data: map[string]any{"restarted": done}}, fmt.Errorf("delete pod %s: %w", pod.Name, err)
		}
		if err := rp.waitReplaced(ctx, t, pod.Name, uid, want); err != nil {
			return Result{Changed: true, Data: map[string]any{"restarted": done}}, err
		}
		done = append(done, pod.Name)
	}
	return Result{Changed: true, Msg: fmt.Sprintf("restarted %d pod(s) of %s one at a time", len(done), rp.Selector),
		Data: map[string]any{"restarted": done}}, nil
}

// waitReplaced waits until the old pod is gone and want pods are Ready.
func (rp *RestartPodsParams) waitReplaced(ctx context.Context, t *Target, name string, uid types.UID, want int) error {
	err := pollObject(ctx, t, rp.Timeout, rp.Interval, "after deleting "+name+", "+rp.Selector, func(ctx context.Context) (bool, string, error) {
		old, err := t.Kube.CoreV1().Pods(rp.Namespace).Get(ctx, name, metav1.GetOptions{})
		gone := apierrors.IsNotFound(err) || (err == nil && old.UID != uid)
		switch {
		case err != nil && !gone:
			return false, err.Error(), nil
		case !gone:
			return false, name + " still terminating", nil
		}
		pods, err := rp.list(ctx, t)
		if err != nil {
			return false, "", err
		}
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) {
				ready++
			}
		}
		return ready >= want, fmt.Sprintf("%d/%d Ready", ready, want), nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", errRestartStuck, err)
	}
	return err
}

var errRestartStuck = errors.New("replacement not Ready")
