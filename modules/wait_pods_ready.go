package modules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// WaitPodsReady waits until pods are Ready: by selector, or a static pod by
// component and node; optionally only pods started after a moment, which
// proves a restart happened.
type WaitPodsReady struct{}

// WaitPodsReadyParams are wait-pods-ready's parameters.
type WaitPodsReadyParams struct {
	Namespace string        `yaml:"namespace" default:"kube-system" doc:"the pods' namespace"`
	Selector  string        `yaml:"selector" doc:"label selector, e.g. k8s-app=kube-proxy"`
	Static    string        `yaml:"static" doc:"a static pod's component (kube-apiserver, etcd, ...): its mirror pod <component>-<node>"`
	Node      string        `yaml:"node" doc:"with static: the node (default: the host's node); with selector: only pods on this node"`
	MinReady  int           `yaml:"min_ready" doc:"how many must be Ready (default: every matching pod, and at least one)"`
	NewerThan string        `yaml:"newer_than" doc:"only pods whose containers started after this RFC 3339 time count; \"step\" means after this step began"`
	Timeout   time.Duration `yaml:"timeout" default:"5m" doc:"give up after this long"`
	Interval  time.Duration `yaml:"interval" default:"2s" doc:"how often to look"`

	newer time.Time
	sel   labels.Selector
}

// Validate checks the parameters.
func (p *WaitPodsReadyParams) Validate() error {
	if err := required("namespace", p.Namespace); err != nil {
		return err
	}
	if (p.Selector == "") == (p.Static == "") {
		return errors.New("give selector or static, one of them")
	}
	if p.Selector != "" {
		sel, err := labels.Parse(p.Selector)
		if err != nil {
			return fmt.Errorf("selector: %w", err)
		}
		p.sel = sel
	}
	if p.NewerThan != "" && p.NewerThan != "step" {
		ts, err := time.Parse(time.RFC3339, p.NewerThan)
		if err != nil {
			return fmt.Errorf("newer_than %q: want an RFC 3339 time or \"step\"", p.NewerThan)
		}
		p.newer = ts
	}
	if p.MinReady < 0 {
		return errors.New("min_ready must not be negative")
	}
	return positive(p.Timeout, p.Interval)
}

func (WaitPodsReady) Name() string { return "wait-pods-ready" }
func (WaitPodsReady) Doc() string {
	return "Wait, bounded, until pods are Ready: those matching selector (optionally on node), or a static pod's mirror pod <static>-<node>. min_ready sets how many (default all, at least one); newer_than (a time, or \"step\") counts only pods started after it, proving a restart happened. Changes nothing."
}
func (WaitPodsReady) NewParams() Params { return &WaitPodsReadyParams{} }

// LocalOnly: the step talks to the API only.
func (WaitPodsReady) LocalOnly() {}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podStarted is when the pod's containers last started (else the pod).
func podStarted(p *corev1.Pod) time.Time {
	var t time.Time
	for _, c := range p.Status.ContainerStatuses {
		if r := c.State.Running; r != nil && r.StartedAt.After(t) {
			t = r.StartedAt.Time
		}
	}
	if t.IsZero() && p.Status.StartTime != nil {
		t = p.Status.StartTime.Time
	}
	return t
}

// look counts the pods that satisfy the wait.
func (p *WaitPodsReadyParams) look(ctx context.Context, t *Target, node string, newer time.Time) (ready, total int, why string, err error) {
	var pods []corev1.Pod
	if p.Static != "" {
		var pod *corev1.Pod
		err = kubeCall(ctx, func(ctx context.Context) (err error) {
			pod, err = t.Kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Static+"-"+node, metav1.GetOptions{})
			return err
		})
		if err != nil {
			return 0, 0, err.Error(), nil
		}
		pods = []corev1.Pod{*pod}
	} else {
		opts := metav1.ListOptions{LabelSelector: p.sel.String()}
		if node != "" {
			opts.FieldSelector = "spec.nodeName=" + node
		}
		var list *corev1.PodList
		if err = kubeCall(ctx, func(ctx context.Context) (err error) {
			list, err = t.Kube.CoreV1().Pods(p.Namespace).List(ctx, opts)
			return err
		}); err != nil {
			return 0, 0, "", fmt.Errorf("list pods %s: %w", p.Selector, err)
		}
		pods = list.Items
	}
	var waiting []string
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		total++
		switch {
		case !podReady(pod):
			waiting = append(waiting, pod.Name+" not Ready")
		case !newer.IsZero() && !podStarted(pod).After(newer):
			waiting = append(waiting, pod.Name+" started "+podStarted(pod).Format(time.RFC3339)+", before the restart")
		default:
			ready++
		}
	}
	sort.Strings(waiting)
	return ready, total, strings.Join(waiting, ", "), nil
}

func (p *WaitPodsReadyParams) enough(ready, total int) bool {
	if p.MinReady > 0 {
		return ready >= p.MinReady
	}
	return total > 0 && ready == total
}

func (p *WaitPodsReadyParams) what(node string) string {
	if p.Static != "" {
		return fmt.Sprintf("static pod %s-%s", p.Static, node)
	}
	w := "pods " + p.Selector
	if node != "" {
		w += " on " + node
	}
	return w
}

func (p *WaitPodsReadyParams) node(t *Target) (string, error) {
	if p.Static != "" {
		return nodeName(t, p.Node)
	}
	if t.Kube == nil {
		return "", ErrNoCluster
	}
	return p.Node, nil
}

// Run waits.
func (WaitPodsReady) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	wp := p.(*WaitPodsReadyParams)
	node, err := wp.node(t)
	if err != nil {
		return Result{}, err
	}
	start := t.Clock.Now()
	newer := wp.newer
	if wp.NewerThan == "step" {
		newer = start.Truncate(time.Second) // the API keeps whole seconds
	}
	var ready, total int
	err = pollObject(ctx, t, wp.Timeout, wp.Interval, wp.what(node), func(ctx context.Context) (bool, string, error) {
		var why string
		var err error
		ready, total, why, err = wp.look(ctx, t, node, newer)
		if why == "" {
			why = "no pods match"
		}
		return err == nil && wp.enough(ready, total), fmt.Sprintf("%d/%d Ready: %s", ready, total, why), err
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Msg: fmt.Sprintf("%s: %d/%d Ready after %s", wp.what(node), ready, total, t.Clock.Now().Sub(start).Round(time.Second)),
		Data: map[string]any{"ready": ready, "total": total}}, nil
}

// Check looks once.
func (WaitPodsReady) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	wp := p.(*WaitPodsReadyParams)
	node, err := wp.node(t)
	if err != nil {
		return Result{}, err
	}
	ready, total, why, err := wp.look(ctx, t, node, wp.newer)
	if err != nil {
		return Result{}, err
	}
	msg := fmt.Sprintf("%s: %d/%d Ready now", wp.what(node), ready, total)
	if why != "" {
		msg += "; would wait: " + why
	}
	return Result{Msg: msg}, nil
}
