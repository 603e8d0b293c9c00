package modules_test

import (
	"context"
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/modules"
)

func pod(name string, owner *metav1.OwnerReference, emptyDir bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "w1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	if emptyDir {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	return p
}

func owned(kind, name string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID("u-" + name), Controller: ptr.To(true)}
}

// drainCluster is a node w1 with pods, and an eviction reactor: respond
// decides each eviction; a nil error evicts (deletes the pod).
func drainCluster(t *testing.T, respond func(name string) error, objs ...runtime.Object) (*fake.Clientset, *int) {
	t.Helper()
	objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	c := fake.NewClientset(objs...)
	// the drain library looks for the Eviction API in discovery
	c.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "pods", Kind: "Pod"},
			{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1"}}},
		{GroupVersion: "policy/v1", APIResources: []metav1.APIResource{{Name: "poddisruptionbudgets", Kind: "PodDisruptionBudget"}}},
	}
	calls := 0
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		calls++
		name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
		err := respond(name)
		if err == nil || apierrors.IsNotFound(err) {
			_ = c.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "default", name)
		}
		return true, nil, err
	})
	return c, &calls
}

func drainTarget(c *fake.Clientset) *modules.Target {
	return &modules.Target{Host: modules.HostInfo{Name: "w1", NodeName: "w1"}, Cluster: modules.Cluster{Kube: c}, Clock: modules.RealClock{}, RunID: "r"}
}

func drainParams(t *testing.T, p modules.DrainParams) *modules.DrainParams {
	t.Helper()
	if p.Timeout == 0 {
		p.Timeout = 20 * time.Second
	}
	p.RetryDelay = 10 * time.Millisecond
	ytree.FillDefaults(&p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return &p
}

func unschedulable(t *testing.T, c *fake.Clientset) bool {
	n, err := c.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Spec.Unschedulable
}

// Reliability case 8: an eviction answered 500 fails the drain at once,
// naming the error and the pod, without waiting for the timeout; 404 means
// the pod is already gone.
func TestDrainEviction500FailsAtOnceAnd404IsDone(t *testing.T) {
	c, calls := drainCluster(t, func(string) error {
		return apierrors.NewInternalError(errors.New("multiple PodDisruptionBudgets match the pod"))
	}, pod("web-1", owned("ReplicaSet", "web"), false))
	start := time.Now()
	_, err := modules.Drain{}.Run(context.Background(), drainTarget(c), drainParams(t, modules.DrainParams{}))
	if err == nil || errors.Is(err, modules.ErrDrainTimeout) || !strings.Contains(err.Error(), "multiple PodDisruptionBudgets") || !strings.Contains(err.Error(), "default/web-1") {
		t.Fatalf("want an immediate API error naming the pod, got %v", err)
	}
	if time.Since(start) > 10*time.Second || *calls != 1 {
		t.Fatalf("a 500 is not retried: %d eviction calls in %s", *calls, time.Since(start))
	}
	if unschedulable(t, c) {
		t.Fatal("a failed drain returns the node to its prior state")
	}

	c, _ = drainCluster(t, func(name string) error {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
	}, pod("web-1", owned("ReplicaSet", "web"), false))
	res, err := modules.Drain{}.Run(context.Background(), drainTarget(c), drainParams(t, modules.DrainParams{}))
	if err != nil || !res.Changed || !unschedulable(t, c) {
		t.Fatalf("404 is done: %+v %v", res, err)
	}
}

// Reliability case 7 with a fake API: PDB 429s until the timeout; the
// failure names the pod, and the node goes back to schedulable.
func TestDrainPDB429UntilTimeout(t *testing.T) {
	c, calls := drainCluster(t, func(string) error {
		return apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	}, pod("web-1", owned("ReplicaSet", "web"), false))
	_, err := modules.Drain{}.Run(context.Background(), drainTarget(c), drainParams(t, modules.DrainParams{Timeout: 300 * time.Millisecond}))
	if !errors.Is(err, modules.ErrDrainTimeout) || !strings.Contains(err.Error(), "default/web-1") || *calls < 3 {
		t.Fatalf("want a timeout naming the pod after several 429s (%d): %v", *calls, err)
	}
	if unschedulable(t, c) {
		t.Fatal("the node must be uncordoned after the failed drain")
	}
}

// Reliability case 9: unmanaged and emptyDir pods are refused by default,
// each named, and nothing is evicted; DaemonSet pods are left alone. The
// playbook opts in explicitly.
func TestDrainRefusesUnsafeTargetsByDefault(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default", UID: "u-agent"}}
	objs := []runtime.Object{ds,
		pod("lonely", nil, false),
		pod("cache-1", owned("ReplicaSet", "cache"), true),
		pod("agent-x", owned("DaemonSet", "agent"), false),
		pod("web-1", owned("ReplicaSet", "web"), false),
	}
	c, calls := drainCluster(t, func(string) error { return nil }, objs...)
	_, err := modules.Drain{}.Run(context.Background(), drainTarget(c), drainParams(t, modules.DrainParams{}))
	if err == nil || !strings.Contains(err.Error(), "lonely") || !strings.Contains(err.Error(), "cache-1") || *calls != 0 {
		t.Fatalf("want a refusal naming lonely and cache-1, with no eviction (%d): %v", *calls, err)
	}
	if unschedulable(t, c) {
		t.Fatal("a refused drain leaves the node schedulable")
	}
	res, err := modules.Drain{}.Run(context.Background(), drainTarget(c), drainParams(t, modules.DrainParams{Force: true, DeleteEmptyDirData: true}))
	if err != nil || *calls != 3 {
		t.Fatalf("opted in: %+v %v (%d evictions, want 3: the DaemonSet pod stays)", res, err, *calls)
	}
	if _, err := c.CoreV1().Pods("default").Get(context.Background(), "agent-x", metav1.GetOptions{}); err != nil {
		t.Fatalf("the DaemonSet pod must stay: %v", err)
	}
}

// Reliability case 10: throttling and server errors on cordon are retried
// with a bounded backoff; other 4xx errors are not.
func TestCordonRetriesTransientAPIErrorsOnly(t *testing.T) {
	c := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	fails := 2
	patches := 0
	c.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches++
		if patches <= fails {
			return true, nil, apierrors.NewServiceUnavailable("apiserver restarting")
		}
		return false, nil, nil
	})
	p := &modules.CordonParams{}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := modules.Cordon{}.Run(context.Background(), drainTarget(c), p)
	if err != nil || !res.Changed || patches != 3 || !unschedulable(t, c) {
		t.Fatalf("two 503s then success: %+v %v (%d patches)", res, err, patches)
	}

	c = fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	patches = 0
	c.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "w1", errors.New("RBAC"))
	})
	if _, err := (modules.Cordon{}).Run(context.Background(), drainTarget(c), p); !apierrors.IsForbidden(err) || patches != 1 {
		t.Fatalf("a 403 is final: %v (%d patches)", err, patches)
	}

	c = fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	patches = 0
	c.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches++
		return true, nil, apierrors.NewTooManyRequests("slow down", 0)
	})
	_, err = modules.Cordon{}.Run(context.Background(), drainTarget(c), p)
	if !apierrors.IsTooManyRequests(err) || !failure.IsRetryable(err) || patches != 5 {
		t.Fatalf("429 until the backoff runs out: bounded, and still retryable for the step: %v (%d patches)", err, patches)
	}
}
