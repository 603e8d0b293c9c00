package kubelet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// CPUManagerState is the CPU manager's checkpoint, as the kubelet keeps it.
const CPUManagerState = "/var/lib/kubelet/cpu_manager_state"

// CheckCPUManager does what the kubelet's CPU manager does at start: a
// static policy needs a CPU reservation; a checkpoint written under another
// policy stops the kubelet (the failure the docs' procedure avoids by
// removing the file); otherwise the checkpoint is (re)written for the
// configured policy.
func CheckCPUManager(c *kubeletv1beta1.KubeletConfiguration, stateFile string) error {
	policy := c.CPUManagerPolicy
	if policy == "" {
		policy = "none"
	}
	switch policy {
	case "none":
	case "static":
		if c.ReservedSystemCPUs == "" && c.KubeReserved["cpu"] == "" && c.SystemReserved["cpu"] == "" {
			return fmt.Errorf("the static policy requires systemreserved.cpu + kubereserved.cpu to be greater than 0, or reservedSystemCPUs")
		}
	default:
		return fmt.Errorf("unknown policy: %q", policy)
	}
	if b, err := os.ReadFile(stateFile); err == nil {
		var st struct {
			PolicyName string `json:"policyName"`
		}
		if json.Unmarshal(b, &st) == nil && st.PolicyName != "" && st.PolicyName != policy {
			return fmt.Errorf("could not restore state from checkpoint: configured policy %q differs from state checkpoint policy %q, please drain this node and delete the CPU manager checkpoint file %q before restarting Kubelet",
				policy, st.PolicyName, stateFile)
		}
	}
	b, _ := json.Marshal(map[string]any{"policyName": policy, "defaultCpuSet": "", "checksum": 0})
	if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
		return err
	}
	return os.WriteFile(stateFile, b, 0o600)
}
