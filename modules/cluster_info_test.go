package modules

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func testNode(name, kubelet string, ready bool, cp bool) runtime.Object {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: kubelet},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
	if cp {
		n.Labels["node-role.kubernetes.io/control-plane"] = ""
	}
	return n
}

func TestClusterInfo(t *testing.T) {
	c := fake.NewClientset(
		testNode("w2", "v1.35.9", false, false),
		testNode("cp1", "v1.36.3", true, true),
		testNode("w1", "v1.36.10", true, false),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
			Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.3\n"}},
	)
	c.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.36.3"}
	res, err := ClusterInfo{}.Run(context.Background(), &Target{Cluster: Cluster{Kube: c}}, &ClusterInfoParams{})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Data
	if d["server_version"] != "v1.36.3" || d["kubeadm_version"] != "v1.36.3" || d["oldest_kubelet"] != "v1.35.9" {
		t.Fatalf("versions: %v", d)
	}
	if !reflect.DeepEqual(d["not_ready"], []string{"w2"}) || !reflect.DeepEqual(d["kubelet_versions"], []string{"v1.35.9", "v1.36.10", "v1.36.3"}) {
		t.Fatalf("nodes: %v %v", d["not_ready"], d["kubelet_versions"])
	}
	nodes := d["nodes"].([]any)
	first := nodes[0].(map[string]any)
	if len(nodes) != 3 || first["name"] != "cp1" || first["control_plane"] != true || first["ready"] != true {
		t.Fatalf("nodes: %v", nodes)
	}
	if _, err := (ClusterInfo{}).Run(context.Background(), &Target{}, &ClusterInfoParams{}); err != ErrNoCluster {
		t.Fatalf("without a cluster: %v", err)
	}
}
