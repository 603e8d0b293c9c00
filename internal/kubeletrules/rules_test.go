package kubeletrules

import (
	"strings"
	"testing"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, s string) *kubeletv1beta1.KubeletConfiguration {
	t.Helper()
	var c kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"+s), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// The seed's worked example (section 42): kube-reserved 4Gi, system-reserved
// 1Gi and the default 100Mi eviction threshold make 5220Mi, reserved as
// 3Gi on NUMA node 0 and 2148Mi on node 1.
func TestMemoryManagerSumRule(t *testing.T) {
	base := `memoryManagerPolicy: Static
kubeReserved: {cpu: "4", memory: 4Gi}
systemReserved: {cpu: "1", memory: 1Gi}
`
	ok := base + `reservedMemory:
- {numaNode: 0, limits: {memory: 3Gi}}
- {numaNode: 1, limits: {memory: 2148Mi}}
`
	if err := Check(parse(t, ok)); err != nil {
		t.Fatalf("the seed's example: %v", err)
	}
	for name, tc := range map[string]struct{ cfg, want string }{
		"sum short by the eviction threshold": {base + "reservedMemory:\n- {numaNode: 0, limits: {memory: 3Gi}}\n- {numaNode: 1, limits: {memory: 2Gi}}\n", "adds up to 5Gi"},
		"no reservedMemory":                   {base, "needs reservedMemory"},
		"explicit threshold counts":           {ok + "evictionHard: {memory.available: 200Mi}\n", "= 5320Mi"},
		"zero":                                {base + "reservedMemory:\n- {numaNode: 0, limits: {memory: 5220Mi}}\n- {numaNode: 1, limits: {memory: \"0\"}}\n", "must be above 0"},
		"hugepages must match reservations":   {ok[:len(ok)-1] + "\n- {numaNode: 0, limits: {hugepages-2Mi: 20Mi}}\n", "hugepages-2Mi adds up to 20Mi"},
		"unknown policy":                      {"memoryManagerPolicy: static\n", `"static": None or Static`},
		"topology":                            {"topologyManagerPolicy: numa\n", "topologyManagerPolicy"},
		"cpu static":                          {"cpuManagerPolicy: static\n", "reservedSystemCPUs"},
		"enforce without cgroup":              {"enforceNodeAllocatable: [pods, kube-reserved]\n", "kubeReservedCgroup"},
		"bad quantity":                        {"kubeReserved: {memory: lots}\n", "not a non-negative quantity"},
	} {
		err := Check(parse(t, tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// a percentage threshold depends on the node's capacity: not checked
	pct := base + "evictionHard: {memory.available: 5%}\nreservedMemory:\n- {numaNode: 0, limits: {memory: 1Gi}}\n"
	if err := Check(parse(t, pct)); err != nil {
		t.Errorf("percentage threshold: %v", err)
	}
}
