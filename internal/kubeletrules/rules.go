// Package kubeletrules checks a KubeletConfiguration against the rules the
// kubelet applies when it starts, so that a configuration it would refuse
// (and a node left NotReady) is caught before any node is touched.
package kubeletrules

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// defaultEvictionMemory is the kubelet's default memory.available hard
// eviction threshold.
var defaultEvictionMemory = resource.MustParse("100Mi")

// Check returns every rule c breaks, joined; nil when the kubelet would
// start with it.
func Check(c *kubeletv1beta1.KubeletConfiguration) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if !slices.Contains([]string{"", "systemd", "cgroupfs"}, c.CgroupDriver) {
		add("cgroupDriver %q: systemd or cgroupfs", c.CgroupDriver)
	}
	switch c.CPUManagerPolicy {
	case "", "none":
	case "static":
		if c.ReservedSystemCPUs == "" && c.KubeReserved["cpu"] == "" && c.SystemReserved["cpu"] == "" {
			add("cpuManagerPolicy static needs reservedSystemCPUs, or kubeReserved.cpu or systemReserved.cpu above 0")
		}
	default:
		add("cpuManagerPolicy %q: none or static", c.CPUManagerPolicy)
	}
	if !slices.Contains([]string{"", "none", "best-effort", "restricted", "single-numa-node"}, c.TopologyManagerPolicy) {
		add("topologyManagerPolicy %q: none, best-effort, restricted or single-numa-node", c.TopologyManagerPolicy)
	}
	if !slices.Contains([]string{"", "container", "pod"}, c.TopologyManagerScope) {
		add("topologyManagerScope %q: container or pod", c.TopologyManagerScope)
	}
	for name, m := range map[string]map[string]string{"kubeReserved": c.KubeReserved, "systemReserved": c.SystemReserved} {
		for _, k := range sortedKeys(m) {
			if !slices.Contains([]string{"cpu", "memory", "ephemeral-storage", "pid"}, k) && !strings.HasPrefix(k, "hugepages-") {
				add("%s.%s: not a reservable resource (cpu, memory, ephemeral-storage, pid, hugepages-SIZE)", name, k)
				continue
			}
			if q, err := resource.ParseQuantity(m[k]); err != nil || q.Sign() < 0 {
				add("%s.%s %q: not a non-negative quantity", name, k, m[k])
			}
		}
	}
	for _, k := range sortedKeys(c.EvictionHard) {
		v := c.EvictionHard[k]
		if strings.HasSuffix(v, "%") {
			continue
		}
		if _, err := resource.ParseQuantity(v); err != nil {
			add("evictionHard.%s %q: a quantity or a percentage", k, v)
		}
	}
	for _, e := range c.EnforceNodeAllocatable {
		switch e {
		case "pods", "none":
		case "system-reserved":
			if c.SystemReservedCgroup == "" {
				add("enforceNodeAllocatable system-reserved needs systemReservedCgroup")
			}
		case "kube-reserved":
			if c.KubeReservedCgroup == "" {
				add("enforceNodeAllocatable kube-reserved needs kubeReservedCgroup")
			}
		default:
			add("enforceNodeAllocatable %q: pods, system-reserved, kube-reserved or none", e)
		}
	}
	errs = append(errs, memoryManager(c)...)
	return errors.Join(errs...)
}

// memoryManager checks the memory manager's start-up rules: the Static
// policy needs reservedMemory, and per memory type the reservations over
// the NUMA nodes add up to kube-reserved + system-reserved (+ the hard
// eviction threshold for memory).
func memoryManager(c *kubeletv1beta1.KubeletConfiguration) []error {
	var errs []error
	switch c.MemoryManagerPolicy {
	case "", "None":
		return nil
	case "Static":
	default:
		return []error{fmt.Errorf("memoryManagerPolicy %q: None or Static", c.MemoryManagerPolicy)}
	}
	if len(c.ReservedMemory) == 0 {
		return []error{errors.New("memoryManagerPolicy Static needs reservedMemory")}
	}
	sums := map[string]*resource.Quantity{}
	seen := map[string]bool{}
	for _, r := range c.ReservedMemory {
		for name, q := range r.Limits {
			key := fmt.Sprintf("%d/%s", r.NumaNode, name)
			if seen[key] {
				errs = append(errs, fmt.Errorf("reservedMemory: NUMA node %d has %s twice", r.NumaNode, name))
			}
			seen[key] = true
			if name != "memory" && !strings.HasPrefix(string(name), "hugepages-") {
				errs = append(errs, fmt.Errorf("reservedMemory: %s is not memory or hugepages-SIZE", name))
				continue
			}
			if q.Sign() <= 0 {
				errs = append(errs, fmt.Errorf("reservedMemory: NUMA node %d %s must be above 0", r.NumaNode, name))
			}
			if sums[string(name)] == nil {
				sums[string(name)] = &resource.Quantity{}
			}
			sums[string(name)].Add(q)
		}
	}
	types := sortedKeys(sums)
	if sums["memory"] == nil {
		types = append([]string{"memory"}, types...)
		sums["memory"] = &resource.Quantity{}
	}
	for _, typ := range types {
		want, exact, err := reservedTotal(c, typ)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !exact {
			continue // a percentage threshold: the node's capacity decides
		}
		if sums[typ].Cmp(want) != 0 {
			errs = append(errs, fmt.Errorf("reservedMemory %s adds up to %s over the NUMA nodes; kubeReserved + systemReserved%s = %s (the kubelet refuses to start otherwise)",
				typ, sums[typ].String(), map[bool]string{true: " + evictionHard memory.available", false: ""}[typ == "memory"], want.String()))
		}
	}
	return errs
}

// reservedTotal is what the reservations of a memory type must add up to;
// exact is false when a percentage makes it depend on the node.
func reservedTotal(c *kubeletv1beta1.KubeletConfiguration, typ string) (resource.Quantity, bool, error) {
	total := resource.Quantity{}
	for _, m := range []map[string]string{c.KubeReserved, c.SystemReserved} {
		if v, ok := m[typ]; ok {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return total, false, fmt.Errorf("reserved %s %q: %w", typ, v, err)
			}
			total.Add(q)
		}
	}
	if typ != "memory" {
		return total, true, nil
	}
	ev, ok := c.EvictionHard["memory.available"]
	switch {
	case !ok:
		total.Add(defaultEvictionMemory)
	case strings.HasSuffix(ev, "%"):
		return total, false, nil
	default:
		q, err := resource.ParseQuantity(ev)
		if err != nil {
			return total, false, fmt.Errorf("evictionHard memory.available %q: %w", ev, err)
		}
		total.Add(q)
	}
	return total, true, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
