package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// CordonedBy is the annotation kubeplay puts on a Node it cordons, naming
// the run. A node cordoned without it was cordoned by someone else, and
// kubeplay does not return it to service unless told to.
const CordonedBy = "kubeplay.io/cordoned-by"

// ErrNoCluster is returned by cluster steps when no kubeconfig was given.
var ErrNoCluster = errors.New("no Kubernetes API connection (give --kubeconfig or set KUBECONFIG)")

// nodeName picks the step's node: the param, else the host's node name.
func nodeName(t *Target, param string) (string, error) {
	if t.Kube == nil {
		return "", ErrNoCluster
	}
	if param != "" {
		return param, nil
	}
	if t.Host.NodeName != "" {
		return t.Host.NodeName, nil
	}
	return t.Host.Name, nil
}

// cordonNode marks the node unschedulable with kubeplay's annotation. It
// reports false when the node was already unschedulable (and leaves it
// as it was, without claiming it).
func cordonNode(ctx context.Context, t *Target, node string) (bool, error) {
	n, err := t.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("get node %s: %w", node, err)
	}
	if n.Spec.Unschedulable {
		return false, nil
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{CordonedBy: t.RunID}},
		"spec":     map[string]any{"unschedulable": true},
	})
	if _, err := t.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("cordon node %s: %w", node, err)
	}
	return true, nil
}

// uncordonNode makes the node schedulable again if kubeplay cordoned it (or
// force). It reports whether it changed the node, and why not.
func uncordonNode(ctx context.Context, t *Target, node string, force bool) (bool, string, error) {
	n, err := t.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return false, "", fmt.Errorf("get node %s: %w", node, err)
	}
	if !n.Spec.Unschedulable {
		return false, node + " is schedulable", nil
	}
	if _, ours := n.Annotations[CordonedBy]; !ours && !force {
		return false, node + " was cordoned before kubeplay touched it; left cordoned (force: true returns it to service)", nil
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{CordonedBy: nil}},
		"spec":     map[string]any{"unschedulable": nil},
	})
	if _, err := t.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, "", fmt.Errorf("uncordon node %s: %w", node, err)
	}
	return true, node + " uncordoned", nil
}

// isCordoned reports the node's schedulability and whether kubeplay holds it.
func isCordoned(ctx context.Context, t *Target, node string) (cordoned, ours bool, err error) {
	n, err := t.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return false, false, fmt.Errorf("get node %s: %w", node, err)
	}
	_, ours = n.Annotations[CordonedBy]
	return n.Spec.Unschedulable, ours, nil
}
