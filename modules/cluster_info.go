package modules

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"
)

// ClusterInfo reads what an upgrade or maintenance preflight decides on:
// versions and the state of every Node.
type ClusterInfo struct{}

// ClusterInfoParams are cluster-info's parameters (none).
type ClusterInfoParams struct{}

// Validate checks the parameters.
func (p *ClusterInfoParams) Validate() error { return nil }

func (ClusterInfo) Name() string { return "cluster-info" }
func (ClusterInfo) Doc() string {
	return "Read the cluster's versions and nodes through the API: server_version, kubeadm_version (ClusterConfiguration.kubernetesVersion of kube-system/kubeadm-config, \"\" without kubeadm), nodes (name, ready, kubelet_version, unschedulable, control_plane), not_ready, kubelet_versions and oldest_kubelet. Runs in the runner; changes nothing."
}
func (ClusterInfo) NewParams() Params { return &ClusterInfoParams{} }

// LocalOnly: the step only talks to the API.
func (ClusterInfo) LocalOnly() {}

// Check is Run: the step only reads.
func (m ClusterInfo) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.Run(ctx, t, p)
}

type nodeInfo struct {
	Name           string `json:"name"`
	Ready          bool   `json:"ready"`
	KubeletVersion string `json:"kubelet_version"`
	Unschedulable  bool   `json:"unschedulable"`
	ControlPlane   bool   `json:"control_plane"`
}

// Run reads the cluster.
func (ClusterInfo) Run(ctx context.Context, t *Target, _ Params) (Result, error) {
	if t.Kube == nil {
		return Result{}, ErrNoCluster
	}
	sv, err := t.Kube.Discovery().ServerVersion()
	if err != nil {
		return Result{}, fmt.Errorf("server version: %w", err)
	}
	kubeadmVersion := ""
	cm, err := t.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err == nil {
		var cc struct {
			KubernetesVersion string `json:"kubernetesVersion"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
			return Result{}, fmt.Errorf("kubeadm-config ClusterConfiguration: %w", err)
		}
		kubeadmVersion = cc.KubernetesVersion
	}
	nl, err := t.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Result{}, fmt.Errorf("list nodes: %w", err)
	}
	nodes := make([]nodeInfo, 0, len(nl.Items))
	notReady := []string{}
	seen := map[string]bool{}
	kubelets := []string{}
	oldest := ""
	for _, n := range nl.Items {
		ni := nodeInfo{Name: n.Name, KubeletVersion: n.Status.NodeInfo.KubeletVersion, Unschedulable: n.Spec.Unschedulable}
		_, ni.ControlPlane = n.Labels["node-role.kubernetes.io/control-plane"]
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ni.Ready = c.Status == corev1.ConditionTrue
			}
		}
		if !ni.Ready {
			notReady = append(notReady, n.Name)
		}
		if v := ni.KubeletVersion; v != "" && !seen[v] {
			seen[v] = true
			kubelets = append(kubelets, v)
			if oldest == "" || olderVersion(v, oldest) {
				oldest = v
			}
		}
		nodes = append(nodes, ni)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	sort.Strings(notReady)
	sort.Strings(kubelets)
	data := map[string]any{
		"server_version":   sv.GitVersion,
		"kubeadm_version":  kubeadmVersion,
		"not_ready":        notReady,
		"kubelet_versions": kubelets,
		"oldest_kubelet":   oldest,
	}
	list := make([]any, len(nodes))
	for i, n := range nodes {
		list[i] = asData(n)
	}
	data["nodes"] = list
	return Result{Data: data, Msg: fmt.Sprintf("server %s, kubeadm %s, %d nodes, %d not Ready, kubelets %v", sv.GitVersion, kubeadmVersion, len(nodes), len(notReady), kubelets)}, nil
}

// olderVersion compares two kubelet versions; unparsable ones sort last.
func olderVersion(a, b string) bool {
	va, ea := version.ParseGeneric(a)
	vb, eb := version.ParseGeneric(b)
	if ea != nil || eb != nil {
		return ea == nil
	}
	return va.LessThan(vb)
}
