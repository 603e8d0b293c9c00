package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestBundledNsGuardrails: the API server enforces what the playbook sets
// (a container default, a container maximum, a pod quota); --check and a
// second run change nothing.
func TestBundledNsGuardrails(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	const ns = "e2e-guardrails"
	t.Cleanup(func() { k.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	params := map[string]any{
		"namespace":        ns,
		"container_limits": map[string]any{"default": map[string]any{"memory": "512Mi"}, "defaultRequest": map[string]any{"memory": "256Mi"}, "max": map[string]any{"memory": "1Gi"}},
		"pvc_limits":       map[string]any{"max": map[string]any{"storage": "2Gi"}},
		"quota":            map[string]any{"pods": "2"},
	}
	run := func(check bool) result {
		return runPlaybook(t, l, bundled(t, "ns-guardrails"), func(o *runner.Options) {
			o.Params, o.Kube, o.Check = params, k, check
			o.Dynamic = dyn(t, l)
		})
	}
	r := run(true)
	if r.err != nil || r.recap.Totals().Changed != 3 {
		t.Fatalf("check: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	if _, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Fatal("--check created the namespace")
	}
	if r = run(false); r.err != nil || r.recap.Totals().Changed != 3 {
		t.Fatalf("run: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	if r = run(false); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second run: %v, %d changed", r.err, r.recap.Totals().Changed)
	}

	pod := func(name, limit string) *corev1.Pod {
		// admission decides at creation; the pods are never scheduled, so
		// that no node has unmanaged pods for later tests' drains
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubeplay.e2e/nowhere": "true"},
			Containers:   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if limit != "" {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)}
		}
		return p
	}
	pods := k.CoreV1().Pods(ns)
	// the quota controller fills in the quota's status first
	waitFor(t, time.Minute, "the quota to be tracked", func() (bool, string) {
		q, err := k.CoreV1().ResourceQuotas(ns).Get(ctx, "kubeplay-guardrails", metav1.GetOptions{})
		return err == nil && len(q.Status.Hard) > 0, "no status yet"
	})
	created, err := pods.Create(ctx, pod("defaulted", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := created.Spec.Containers[0].Resources; got.Limits.Memory().String() != "512Mi" || got.Requests.Memory().String() != "256Mi" {
		t.Fatalf("the LimitRange defaults were not applied: %+v", got)
	}
	if _, err := pods.Create(ctx, pod("too-big", "1536Mi"), metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "maximum memory usage per Container is 1Gi") {
		t.Fatalf("a container over the maximum must be rejected: %v", err)
	}
	if _, err := pods.Create(ctx, pod("second", "128Mi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, pod("third", "128Mi"), metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("a third pod must be over the quota: %v", err)
	}
}
