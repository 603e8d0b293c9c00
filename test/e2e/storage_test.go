package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestBundledDefaultStorageClass starts with two defaults (one marked with
// the GA annotation, one with the beta one: the API server then has no
// default at all) and makes a third the only default; a second run
// changes nothing; a class that does not exist is refused before anything
// changes.
func TestBundledDefaultStorageClass(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	const ga, beta = "storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"
	for name, ann := range map[string]map[string]string{"e2e-sc-a": {ga: "true"}, "e2e-sc-b": {beta: "true"}, "e2e-sc-c": nil} {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Provisioner: "kubernetes.io/no-provisioner"}
		if _, err := k.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.StorageV1().StorageClasses().Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	run := func(name string) result {
		return runPlaybook(t, l, bundled(t, "default-storageclass"), func(o *runner.Options) {
			apiClients(t, l)(o)
			o.Params = map[string]any{"name": name}
		})
	}
	defaults := func() string {
		scs, err := k.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sc := range scs.Items {
			if sc.Annotations[ga] == "true" || sc.Annotations[beta] == "true" {
				out = append(out, sc.Name)
			}
		}
		return strings.Join(out, ",")
	}
	if r := run("e2e-sc-missing"); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Fatalf("a missing class must be refused: %v", r.err)
	}
	if got := defaults(); got != "e2e-sc-a,e2e-sc-b" {
		t.Fatalf("the refused run changed the defaults: %s", got)
	}
	if r := run("e2e-sc-c"); r.err != nil {
		t.Fatal(r.err)
	}
	if got := defaults(); got != "e2e-sc-c" {
		t.Fatalf("defaults: %s, want e2e-sc-c only", got)
	}
	if r := run("e2e-sc-c"); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
}

// TestBundledPVReclaimPolicy sets Retain on the PersistentVolumes of one
// StorageClass and leaves the others alone; a second run changes nothing;
// a run without any selection, or naming a volume that does not exist, is
// refused before anything changes.
func TestBundledPVReclaimPolicy(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	for name, class := range map[string]string{"e2e-pv-a": "e2e-fast", "e2e-pv-b": "e2e-fast", "e2e-pv-c": "e2e-slow"} {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				StorageClassName:              class,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
			},
		}
		if _, err := k.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	run := func(p map[string]any) result {
		return runPlaybook(t, l, bundled(t, "pv-reclaim-policy"), func(o *runner.Options) { apiClients(t, l)(o); o.Params = p })
	}
	policies := func() string {
		var out []string
		for _, n := range []string{"e2e-pv-a", "e2e-pv-b", "e2e-pv-c"} {
			pv, err := k.CoreV1().PersistentVolumes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n+"="+string(pv.Spec.PersistentVolumeReclaimPolicy))
		}
		return strings.Join(out, " ")
	}
	if r := run(map[string]any{}); r.err == nil || !strings.Contains(r.err.Error(), "give names, storage_class or claim_namespace") {
		t.Fatalf("no selection must be refused: %v", r.err)
	}
	if r := run(map[string]any{"names": []any{"e2e-pv-c", "e2e-pv-missing"}}); r.err == nil {
		t.Fatal("a missing volume must be refused")
	}
	if got, want := policies(), "e2e-pv-a=Delete e2e-pv-b=Delete e2e-pv-c=Delete"; got != want {
		t.Fatalf("refused runs changed volumes: %s", got)
	}
	if r := run(map[string]any{"storage_class": "e2e-fast"}); r.err != nil {
		t.Fatal(r.err)
	}
	if got, want := policies(), "e2e-pv-a=Retain e2e-pv-b=Retain e2e-pv-c=Delete"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if r := run(map[string]any{"storage_class": "e2e-fast"}); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
}
