package kubelet

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

func TestLoadConfigRefusesWhatTheKubeletRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\nstaticPodPath: /etc/kubernetes/manifests\n"
	c, err := LoadConfig(write(good))
	if err != nil || c.CgroupDriver != "systemd" {
		t.Fatalf("%+v %v", c, err)
	}
	for name, body := range map[string]string{
		"unknown field": good + "cgroupDriverr: systemd\n",
		"wrong type":    strings.Replace(good, "cgroupDriver: systemd", "cgroupDriver: [systemd]", 1),
		"bad driver":    strings.Replace(good, "systemd", "upstart", 1),
		"wrong kind":    strings.Replace(good, "KubeletConfiguration", "KubeProxyConfiguration", 1),
	} {
		if _, err := LoadConfig(write(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFlagsAndEnvFile(t *testing.T) {
	env := filepath.Join(t.TempDir(), "kubeadm-flags.env")
	os.WriteFile(env, []byte(`KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-ip=10.77.0.14"`+"\n"), 0o644)
	args, err := EnvFileArgs(env, "KUBELET_KUBEADM_ARGS")
	if err != nil {
		t.Fatal(err)
	}
	f := ParseFlags(append([]string{"--config", "/var/lib/kubelet/config.yaml", "--kubeconfig=/etc/kubernetes/kubelet.conf"}, args...))
	if f.Config != "/var/lib/kubelet/config.yaml" || f.Kubeconfig != "/etc/kubernetes/kubelet.conf" ||
		f.NodeIP != "10.77.0.14" || f.RuntimeEndpoint != "unix:///run/containerd/containerd.sock" {
		t.Fatalf("%+v", f)
	}
}

func TestCacheResolver(t *testing.T) {
	cache := t.TempDir()
	for _, p := range []string{"kube/v1.36.3/kube-apiserver", "etcd/v3.6.8/etcd"} {
		os.MkdirAll(filepath.Dir(filepath.Join(cache, p)), 0o755)
		os.WriteFile(filepath.Join(cache, p), nil, 0o755)
	}
	r := CacheResolver(cache)
	if p, err := r("registry.k8s.io/kube-apiserver:v1.36.3"); err != nil || !strings.HasSuffix(p, "kube/v1.36.3/kube-apiserver") {
		t.Fatal(p, err)
	}
	if p, err := r("registry.k8s.io/etcd:3.6.8-0"); err != nil || !strings.HasSuffix(p, "etcd/v3.6.8/etcd") {
		t.Fatal(p, err)
	}
	if _, err := r("registry.k8s.io/kube-apiserver:v1.99.0"); err == nil {
		t.Fatal("a version the lab has no binary for must be an error")
	}
}

func TestCPUManagerCheckpoint(t *testing.T) {
	state := filepath.Join(t.TempDir(), "cpu_manager_state")
	none := &kubeletv1beta1.KubeletConfiguration{}
	static := &kubeletv1beta1.KubeletConfiguration{CPUManagerPolicy: "static", ReservedSystemCPUs: "0"}
	if err := CheckCPUManager(none, state); err != nil {
		t.Fatal(err)
	}
	if err := CheckCPUManager(static, state); err == nil || !strings.Contains(err.Error(), `differs from state checkpoint policy "none"`) {
		t.Fatalf("a checkpoint of another policy must stop the kubelet: %v", err)
	}
	os.Remove(state)
	if err := CheckCPUManager(static, state); err != nil {
		t.Fatal(err)
	}
	if err := CheckCPUManager(&kubeletv1beta1.KubeletConfiguration{CPUManagerPolicy: "static"}, filepath.Join(t.TempDir(), "s")); err == nil {
		t.Fatal("static without a CPU reservation must be refused")
	}
}

// The seed's worked example (section 30): a 16 CPU, 32Gi, 100Gi node with
// kube-reserved cpu=1,memory=2Gi,ephemeral-storage=1Gi, system-reserved
// cpu=500m,memory=1Gi,ephemeral-storage=1Gi and eviction-hard
// memory.available<500Mi,nodefs.available<10% has 14.5 CPU, 88Gi and
// "28.5Gi" of memory: exactly 32768Mi - 2048Mi - 1024Mi - 500Mi = 29196Mi
// (the docs round 500Mi to half a Gi).
func TestAllocatableSeedExample(t *testing.T) {
	c := &kubeletv1beta1.KubeletConfiguration{
		KubeReserved:   map[string]string{"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1Gi"},
		SystemReserved: map[string]string{"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
		EvictionHard:   map[string]string{"memory.available": "500Mi", "nodefs.available": "10%"},
	}
	capacity := corev1.ResourceList{"cpu": resource.MustParse("16"), "memory": resource.MustParse("32Gi"), "ephemeral-storage": resource.MustParse("100Gi")}
	got, err := Allocatable(c, capacity)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[corev1.ResourceName]string{"cpu": "14500m", "memory": "29196Mi", "ephemeral-storage": "88Gi"} {
		q := got[name]
		if q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s: %s, want %s", name, q.String(), want)
		}
	}
	c.KubeReserved["memory"] = "40Gi"
	if _, err := Allocatable(c, capacity); err == nil {
		t.Error("a reservation above capacity must stop the kubelet")
	}
}

// The lab kubelet reads its manifests directory as the real one: any
// non-dot file holding a pod is one, whatever its extension; dot-files are
// not; a duplicate name keeps the first file.
func TestManifestsLikeTheRealKubelet(t *testing.T) {
	dir := t.TempDir()
	pod := func(name string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: kube-system}\nspec: {containers: [{name: c, image: x}]}\n"
	}
	files := map[string]string{
		"kube-apiserver.yaml":                      pod("kube-apiserver"),
		"kube-apiserver.yaml.kubeplay-20261206T11": pod("kube-apiserver"), // a visible backup: a duplicate
		"etcd.yaml.bak":                            pod("etcd"),           // no .yaml suffix, still a pod
		".kube-scheduler.yaml.kubeplay-20261206":   pod("kube-scheduler"), // hidden: ignored
		"notes.txt":                                "not a pod\n",
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600)
	}
	os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755)
	got := Manifests(dir)
	var names []string
	for p := range got {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "etcd.yaml.bak,kube-apiserver.yaml" {
		t.Fatalf("static pods from %v", names)
	}
}
