package modules

import (
	"context"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeplay/kubeplay/internal/yamledit"
)

const corefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
}
`

func TestConfigMapTextOps(t *testing.T) {
	p := &ConfigMapEditParams{Name: "coredns", Key: "Corefile", TextOps: []TextOp{
		{Regexp: `cache 30`, Replace: "cache 60"},
		{After: `^\s*errors$`, Insert: "    log"},
	}}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	got := applyText(corefile, p.TextOps)
	want := strings.Replace(strings.Replace(corefile, "cache 30", "cache 60", 1), "    errors\n", "    errors\n    log\n", 1)
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if again := applyText(got, p.TextOps); again != got {
		t.Fatalf("a second pass changed it:\n%s", again)
	}
	bad := &ConfigMapEditParams{Name: "coredns", Key: "Corefile", TextOps: []TextOp{{Regexp: "x", Insert: "y"}}}
	ytree.FillDefaults(bad)
	if err := bad.Validate(); err == nil {
		t.Fatal("a mixed text op was accepted")
	}
}

// A conflict re-reads the ConfigMap and applies the edit on top of the
// other writer's change: neither is lost.
func TestConfigMapEditConflictReappliesOnFreshData(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", ResourceVersion: "1"},
		Data: map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n"}}
	cs := fake.NewSimpleClientset(cm)
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	updates := 0
	cs.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		updates++
		if updates > 1 {
			return false, nil, nil
		}
		// someone else writes first
		other := cm.DeepCopy()
		other.Data["config.conf"] += "clusterCIDR: 10.244.0.0/16\n"
		_ = cs.Tracker().Update(gvr, other, "kube-system")
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "kube-proxy", nil)
	})
	p := &ConfigMapEditParams{Name: "kube-proxy", Key: "config.conf", Ops: []yamledit.Op{{Op: "set", Path: "mode", Value: "ipvs"}}}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tg := &Target{Cluster: Cluster{Kube: cs}}
	r, err := ConfigMapEdit{}.Run(context.Background(), tg, p)
	if err != nil || !r.Changed {
		t.Fatalf("%+v %v", r, err)
	}
	got, _ := cs.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "kube-proxy", metav1.GetOptions{})
	if c := got.Data["config.conf"]; !strings.Contains(c, "mode: ipvs") || !strings.Contains(c, "clusterCIDR: 10.244.0.0/16") || updates != 2 {
		t.Fatalf("after %d updates:\n%s", updates, c)
	}
	// rollback refuses to overwrite a change made after ours
	changed := got.DeepCopy()
	changed.Data["config.conf"] += "# edited by hand\n"
	_ = cs.Tracker().Update(gvr, changed, "kube-system")
	if err := (ConfigMapEdit{}).Undo(context.Background(), tg, p, r); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("undo over a later change: %v", err)
	}
}
