package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubeplay/kubeplay/failure"
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
	n, err := getNode(ctx, t, node)
	if err != nil {
		return false, err
	}
	if n.Spec.Unschedulable {
		return false, nil
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{CordonedBy: t.RunID}},
		"spec":     map[string]any{"unschedulable": true},
	})
	if err := patchNode(ctx, t, node, patch); err != nil {
		return false, fmt.Errorf("cordon node %s: %w", node, err)
	}
	return true, nil
}

// uncordonNode makes the node schedulable again if kubeplay cordoned it (or
// force). It reports whether it changed the node, and why not.
func uncordonNode(ctx context.Context, t *Target, node string, force bool) (bool, string, error) {
	n, err := getNode(ctx, t, node)
	if err != nil {
		return false, "", err
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
	if err := patchNode(ctx, t, node, patch); err != nil {
		return false, "", fmt.Errorf("uncordon node %s: %w", node, err)
	}
	return true, node + " uncordoned", nil
}

// isCordoned reports the node's schedulability and whether kubeplay holds it.
func isCordoned(ctx context.Context, t *Target, node string) (cordoned, ours bool, err error) {
	n, err := getNode(ctx, t, node)
	if err != nil {
		return false, false, err
	}
	_, ours = n.Annotations[CordonedBy]
	return n.Spec.Unschedulable, ours, nil
}

// apiBackoff bounds the retries of one API call: five tries over about 6 s.
func apiBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}
}

// transientAPI says whether an API error may go away by itself: throttling
// (429), server errors (5xx) and dropped or refused connections. Other
// errors (4xx) are answers, and retrying them cannot help.
func transientAPI(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code >= 500 {
		return true
	}
	return apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
}

// kubeCall runs one API call, retrying transient errors with a bounded
// backoff. Other errors return at once. When the retries run out, the
// error stays retryable for the step's own retries.
func kubeCall(ctx context.Context, call func(context.Context) error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, apiBackoff(), func(ctx context.Context) (bool, error) {
		last = call(ctx)
		if last == nil {
			return true, nil
		}
		if transientAPI(last) {
			return false, nil
		}
		return false, last
	})
	if err != nil && wait.Interrupted(err) && last != nil {
		return failure.Retryable(last)
	}
	return err
}

func getNode(ctx context.Context, t *Target, node string) (*corev1.Node, error) {
	var n *corev1.Node
	err := kubeCall(ctx, func(ctx context.Context) (err error) {
		n, err = t.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", node, err)
	}
	return n, nil
}

// patchNode applies a merge patch. It carries no resourceVersion, so it
// cannot conflict, and applying it twice is the same as once, so a retry
// after a 5xx whose outcome is unknown is safe.
func patchNode(ctx context.Context, t *Target, node string, patch []byte) error {
	return kubeCall(ctx, func(ctx context.Context) error {
		_, err := t.Kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// positive refuses a wait's bound or interval that is not positive: a
// value the user gave (a default comes from the params' tags).
func positive(timeout, interval time.Duration) error {
	if timeout <= 0 || interval <= 0 {
		return errors.New("timeout and interval must be positive")
	}
	return nil
}
