package kubelet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	return checkpoint("CPU", policy, stateFile)
}

// MemoryManagerState is the memory manager's checkpoint.
const MemoryManagerState = "/var/lib/kubelet/memory_manager_state"

// CheckMemoryManager does what the kubelet's memory manager does at start:
// the Static policy needs reservedMemory, and a checkpoint written under
// another policy stops the kubelet.
func CheckMemoryManager(c *kubeletv1beta1.KubeletConfiguration, stateFile string) error {
	policy := c.MemoryManagerPolicy
	if policy == "" {
		policy = "None"
	}
	switch policy {
	case "None":
	case "Static":
		if len(c.ReservedMemory) == 0 {
			return fmt.Errorf("[memorymanager] you should specify the memory reservation for the static policy")
		}
	default:
		return fmt.Errorf("unknown policy: %q", policy)
	}
	return checkpoint("memory", policy, stateFile)
}

// CheckTopologyManager refuses the policies and scopes the kubelet does not
// know.
func CheckTopologyManager(c *kubeletv1beta1.KubeletConfiguration) error {
	switch c.TopologyManagerPolicy {
	case "", "none", "best-effort", "restricted", "single-numa-node":
	default:
		return fmt.Errorf("unknown policy: %q", c.TopologyManagerPolicy)
	}
	switch c.TopologyManagerScope {
	case "", "container", "pod":
	default:
		return fmt.Errorf("unknown scope: %q", c.TopologyManagerScope)
	}
	return nil
}

// checkpoint refuses a checkpoint of another policy, and (re)writes it for
// the configured one.
func checkpoint(manager, policy, stateFile string) error {
	if b, err := os.ReadFile(stateFile); err == nil {
		var st struct {
			PolicyName string `json:"policyName"`
		}
		if json.Unmarshal(b, &st) == nil && st.PolicyName != "" && st.PolicyName != policy {
			return fmt.Errorf("could not restore state from checkpoint: configured policy %q differs from state checkpoint policy %q, please drain this node and delete the %s manager checkpoint file %q before restarting Kubelet",
				policy, st.PolicyName, manager, stateFile)
		}
	}
	b, _ := json.Marshal(map[string]any{"policyName": policy, "checksum": 0})
	if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
		return err
	}
	return os.WriteFile(stateFile, b, 0o600)
}

// QueryRuntime asks the runtime serving endpoint (unix://PATH) for its
// version and cgroup driver, as the kubelet does over CRI at start. The
// lab's runtime stand-in answers one line: "VERSION DRIVER".
func QueryRuntime(endpoint string, timeout time.Duration) (version, driver string, err error) {
	path := strings.TrimPrefix(endpoint, "unix://")
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", fmt.Errorf("read the runtime's version: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return "", "", fmt.Errorf("the runtime answered %q", line)
	}
	return f[0], f[1], nil
}

// CheckCgroupDriver refuses to start when the kubelet's cgroup driver is
// not the runtime's: the drivers must match (seed section 1.2), and a real
// node with a mismatch fails every pod sandbox.
func CheckCgroupDriver(c *kubeletv1beta1.KubeletConfiguration, runtimeDriver string) error {
	kubelet := c.CgroupDriver
	if kubelet == "" {
		kubelet = "cgroupfs"
	}
	if runtimeDriver != kubelet {
		return fmt.Errorf("misconfiguration: kubelet cgroup driver: %q is different from the container runtime cgroup driver: %q", kubelet, runtimeDriver)
	}
	return nil
}
