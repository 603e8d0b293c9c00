package kubelet

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// Capacity is what every lab node reports it has (the seed's worked
// example of section 30 uses a node of this shape).
func Capacity() corev1.ResourceList {
	return corev1.ResourceList{
		"cpu": resource.MustParse("8"), "memory": resource.MustParse("32Gi"),
		"ephemeral-storage": resource.MustParse("100Gi"), "pods": resource.MustParse("110"),
	}
}

// Allocatable does the kubelet's Node Allocatable arithmetic (section 30):
// capacity - kube-reserved - system-reserved - the hard eviction threshold
// (memory.available for memory, nodefs.available for ephemeral storage;
// the kubelet's defaults, 100Mi and 10%, when the config sets none). Like
// the kubelet, it refuses reservations above capacity.
func Allocatable(c *kubeletv1beta1.KubeletConfiguration, capacity corev1.ResourceList) (corev1.ResourceList, error) {
	eviction := map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"}
	for k, v := range c.EvictionHard {
		eviction[k] = v
	}
	out := corev1.ResourceList{}
	for name, capQ := range capacity {
		alloc := capQ.DeepCopy()
		for _, reserved := range []map[string]string{c.KubeReserved, c.SystemReserved} {
			if v, ok := reserved[string(name)]; ok {
				q, err := resource.ParseQuantity(v)
				if err != nil {
					return nil, fmt.Errorf("reserved %s %q: %w", name, v, err)
				}
				alloc.Sub(q)
			}
		}
		signal := map[corev1.ResourceName]string{"memory": "memory.available", "ephemeral-storage": "nodefs.available"}[name]
		if v, ok := eviction[signal]; ok && signal != "" {
			q, err := threshold(v, capQ)
			if err != nil {
				return nil, fmt.Errorf("evictionHard %s: %w", signal, err)
			}
			alloc.Sub(q)
		}
		if alloc.Sign() < 0 {
			return nil, fmt.Errorf("resource %q has an allocatable of %v, capacity of %v", name, alloc.String(), capQ.String())
		}
		out[name] = alloc
	}
	return out, nil
}

// threshold is an eviction threshold as a quantity: absolute, or a
// percentage of capacity.
func threshold(v string, capacity resource.Quantity) (resource.Quantity, error) {
	if pct, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || f < 0 || f > 100 {
			return resource.Quantity{}, fmt.Errorf("%q: not a percentage", v)
		}
		return *resource.NewQuantity(int64(float64(capacity.Value())*f/100), capacity.Format), nil
	}
	return resource.ParseQuantity(v)
}
