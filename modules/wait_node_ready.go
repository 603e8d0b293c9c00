package modules

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WaitNodeReady waits until a Node is Ready (optionally at a kubelet
// version, and for a while without flapping), bounded by a timeout.
type WaitNodeReady struct{}

// WaitNodeReadyParams are wait-node-ready's parameters.
type WaitNodeReadyParams struct {
	Node           string        `yaml:"node" doc:"Node name (default: the host's node_name)"`
	KubeletVersion string        `yaml:"kubelet_version" doc:"also wait until status.nodeInfo.kubeletVersion is this, e.g. v1.37.2"`
	StableFor      time.Duration `yaml:"stable_for" doc:"Ready must hold this long without interruption"`
	Timeout        time.Duration `yaml:"timeout" default:"5m" doc:"give up after this long"`
	Interval       time.Duration `yaml:"interval" default:"2s" doc:"how often to look"`
}

// Validate checks the parameters.
func (p *WaitNodeReadyParams) Validate() error {
	if p.StableFor < 0 {
		return errors.New("stable_for must not be negative")
	}
	return positive(p.Timeout, p.Interval)
}

// ErrNodeNotReady is returned when the node is not ready in time.
var ErrNodeNotReady = errors.New("node not ready")

func (WaitNodeReady) Name() string { return "wait-node-ready" }
func (WaitNodeReady) Doc() string {
	return "Wait until the host's Node reports Ready (and, if given, the kubelet version), continuously for stable_for, bounded by timeout. Changes nothing."
}
func (WaitNodeReady) NewParams() Params { return &WaitNodeReadyParams{} }

// nodeReady says whether a node satisfies the wait, and if not, why.
func (p *WaitNodeReadyParams) nodeReady(n *corev1.Node) (bool, string) {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	switch {
	case !ready:
		return false, "not Ready"
	case p.KubeletVersion != "" && n.Status.NodeInfo.KubeletVersion != p.KubeletVersion:
		return false, fmt.Sprintf("kubelet %s, want %s", n.Status.NodeInfo.KubeletVersion, p.KubeletVersion)
	}
	return true, ""
}

// Run waits.
func (WaitNodeReady) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	wp := p.(*WaitNodeReadyParams)
	node, err := nodeName(t, wp.Node)
	if err != nil {
		return Result{}, err
	}
	start := t.Clock.Now()
	var since time.Time // when the current Ready streak began
	err = poll(ctx, t.Clock, pollSpec{Timeout: wp.Timeout, Interval: wp.Interval}, func(ctx context.Context) (bool, string, error) {
		n, err := t.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			since = time.Time{}
			return false, err.Error(), nil
		}
		ok, why := wp.nodeReady(n)
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero():
			since = t.Clock.Now()
		}
		return ok && t.Clock.Now().Sub(since) >= wp.StableFor, why, nil
	})
	if err != nil {
		return Result{}, expired(err, func(nd *NotDone) error {
			return fmt.Errorf("%w: %s after %s: %s", ErrNodeNotReady, node, nd.After, nd.Reason)
		})
	}
	return Result{Msg: fmt.Sprintf("%s Ready after %s", node, t.Clock.Now().Sub(start).Round(time.Second))}, nil
}

// Check looks once.
func (WaitNodeReady) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	wp := p.(*WaitNodeReadyParams)
	node, err := nodeName(t, wp.Node)
	if err != nil {
		return Result{}, err
	}
	n, err := t.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return Result{}, fmt.Errorf("get node %s: %w", node, err)
	}
	if ok, why := wp.nodeReady(n); !ok {
		return Result{Msg: fmt.Sprintf("%s is %s now; would wait", node, why)}, nil
	}
	return Result{Msg: node + " is Ready"}, nil
}
