package modules_test

import (
	"context"
	"fmt"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"sort"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeplay/kubeplay/modules"
)

func configMap(name string, labels map[string]any, data map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "shop", "labels": labels},
		"data":     data,
	}}
}

// A bulk k8s-patch selects by label selector and where, patches each match
// and discovers the API once for the whole step, however many objects.
func TestK8sPatchBulkSelectsAndDiscoversOnce(t *testing.T) {
	web := map[string]any{"app": "web"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Version: "v1", Resource: "configmaps"}: "ConfigMapList"},
		configMap("a", web, map[string]any{"tier": "front"}),
		configMap("b", web, map[string]any{"tier": "back"}),
		configMap("c", web, map[string]any{"tier": "keep"}),
		configMap("d", map[string]any{"app": "db"}, map[string]any{"tier": "front"}),
	)
	kube := fake.NewSimpleClientset()
	kube.Resources = []*metav1.APIResourceList{{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"get", "list", "patch"}}}}}
	p := &modules.K8sPatchParams{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Type: "merge",
		LabelSelector: "app=web", Where: `obj.data.tier != "keep"`,
		Patch: map[string]any{"data": map[string]any{"patched": "yes"}}}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tg := target(true) // a dry run compares content (the fake keeps resourceVersions)
	tg.Kube, tg.Dynamic = kube, dyn
	r, err := modules.K8sPatch{}.Run(context.Background(), tg, p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range r.Data["patched"].([]any) {
		names = append(names, fmt.Sprint(n))
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[shop/a shop/b]" || r.Data["matched"] != 2 || !r.Changed {
		t.Fatalf("patched %v of %v: %+v", names, r.Data["matched"], r)
	}
	discoveries := 0
	for _, a := range kube.Actions() {
		if a.GetResource().Resource == "group" { // the discovery of API groups
			discoveries++
		}
	}
	if discoveries != 1 {
		t.Fatalf("discovered the API %d times for one step", discoveries)
	}
}
