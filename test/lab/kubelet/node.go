package kubelet

import (
	"context"
	"fmt"
	"maps"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Node publishes the Node object, its heartbeat and the mirror pods.
type Node struct {
	Client         kubernetes.Interface
	Name           string
	IP             string
	KubeletVersion string // "v1.36.3"
	Runtime        string // "containerd://1.7.24"
	Allocatable    corev1.ResourceList
	Labels         map[string]string
	Annotations    map[string]string
	Pods           *StaticPods
	Interval       time.Duration
}

// Run registers the node and heartbeats until ctx ends. API errors are
// retried on the next beat: the API server may not be up yet (it may be one
// of this node's own static pods).
func (n *Node) Run(ctx context.Context) {
	if n.Interval == 0 {
		n.Interval = 5 * time.Second
	}
	t := time.NewTicker(n.Interval)
	defer t.Stop()
	last := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, n.Interval)
		err := n.beat(cctx)
		if err == nil {
			err = n.syncMirrors(cctx)
		}
		cancel()
		// log each distinct problem once, as the API may be down for a while
		if msg := fmt.Sprint(err); err != nil && msg != last {
			fmt.Fprintln(os.Stderr, "kubelet:", msg)
			last = msg
		} else if err == nil {
			last = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) beat(ctx context.Context) error {
	nodes := n.Client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{}, Annotations: map[string]string{}}}
		maps.Copy(node.Labels, n.Labels)
		maps.Copy(node.Annotations, n.Annotations)
		node.Labels["kubernetes.io/hostname"] = n.Name
		node.Labels["kubernetes.io/os"] = "linux"
		node.Labels["kubernetes.io/arch"] = "amd64"
		node, err = nodes.Create(ctx, node, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
	node.Status.NodeInfo.KubeletVersion = n.KubeletVersion
	node.Status.NodeInfo.ContainerRuntimeVersion = n.Runtime
	node.Status.NodeInfo.OperatingSystem, node.Status.NodeInfo.Architecture = "linux", "amd64"
	node.Status.Capacity = Capacity()
	node.Status.Allocatable = n.Allocatable
	if node.Status.Allocatable == nil {
		node.Status.Allocatable = node.Status.Capacity
	}
	node.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "lab kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: readySince(node, now),
	}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return err
	}
	return n.renewLease(ctx, node)
}

func readySince(node *corev1.Node, now metav1.Time) metav1.Time {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime
		}
	}
	return now
}

func (n *Node) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := n.Client.CoordinationV1().Leases("kube-node-lease")
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.Name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// syncMirrors makes the API show one mirror pod per static pod, annotated
// with the manifest hash the way kubeadm expects when it waits for a
// component to restart. Like the kubelet, it lists the pods bound to its
// node (the Node authorizer allows that, not a Get of a missing pod).
func (n *Node) syncMirrors(ctx context.Context) error {
	node, err := n.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	list, err := n.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
	if err != nil {
		return err
	}
	existing := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if _, isMirror := p.Annotations[corev1.MirrorPodAnnotationKey]; isMirror {
			existing[p.Namespace+"/"+p.Name] = p
		} else if err := n.restoreReady(ctx, p); err != nil {
			return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
	}
	want := map[string]bool{}
	for _, sp := range n.Pods.Snapshot() {
		key := namespaceOf(sp.Pod) + "/" + sp.Pod.Name + "-" + n.Name
		want[key] = true
		if err := n.mirror(ctx, node, sp, existing[key]); err != nil {
			return fmt.Errorf("mirror %s: %w", key, err)
		}
	}
	// mirror pods whose manifest is gone are deleted, as the kubelet does
	for key, p := range existing {
		if !want[key] {
			_ = n.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		}
	}
	return nil
}

// restoreReady marks Ready again a running pod whose containers are ready
// but whose Ready condition is False: what the node lifecycle controller
// leaves on every pod of a node that stayed NotReady past its grace
// period. A returning kubelet's status manager reports such pods Ready
// again; kwok, which runs the lab's pods, only sets Ready once.
func (n *Node) restoreReady(ctx context.Context, p *corev1.Pod) error {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !condition(p, corev1.ContainersReady) {
		return nil
	}
	for i, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			p.Status.Conditions[i].Status = corev1.ConditionTrue
			p.Status.Conditions[i].Reason, p.Status.Conditions[i].Message = "", ""
			p.Status.Conditions[i].LastTransitionTime = metav1.Now()
			_, err := n.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return nil // changed or gone meanwhile: the next beat sees it anew
			}
			return err
		}
	}
	return nil
}

func condition(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func namespaceOf(p *corev1.Pod) string {
	if p.Namespace == "" {
		return metav1.NamespaceDefault
	}
	return p.Namespace
}

func (n *Node) mirror(ctx context.Context, node *corev1.Node, sp StaticPod, cur *corev1.Pod) error {
	ns := namespaceOf(sp.Pod)
	pods := n.Client.CoreV1().Pods(ns)
	name := sp.Pod.Name + "-" + n.Name
	if cur != nil && cur.Annotations[corev1.MirrorPodAnnotationKey] != sp.Hash {
		// manifest changed: the old mirror goes, a new one comes (as with the kubelet)
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		cur = nil
	}
	if cur == nil {
		p := sp.Pod.DeepCopy()
		p.Name, p.Namespace, p.ResourceVersion, p.UID = name, ns, "", ""
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[corev1.MirrorPodAnnotationKey] = sp.Hash
		p.Annotations["kubernetes.io/config.hash"] = sp.Hash
		p.Annotations["kubernetes.io/config.source"] = "file"
		p.Spec.NodeName = n.Name
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}
		var err error
		if cur, err = pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	status := corev1.ConditionFalse
	phase := corev1.PodPending
	if sp.Running {
		status, phase = corev1.ConditionTrue, corev1.PodRunning
	}
	started := metav1.NewTime(sp.Started)
	cur.Status.Phase = phase
	cur.Status.HostIP, cur.Status.PodIP = n.IP, n.IP
	cur.Status.StartTime = &started
	cur.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReady, Status: status, LastTransitionTime: started},
		{Type: corev1.ContainersReady, Status: status, LastTransitionTime: started},
	}
	cs := corev1.ContainerStatus{Name: sp.Pod.Spec.Containers[0].Name, Image: sp.Pod.Spec.Containers[0].Image,
		Ready: sp.Running, RestartCount: sp.Restart, Started: ptr.To(sp.Running)}
	if sp.Running {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: started}
	} else {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: sp.Err}
	}
	cur.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	_, err := pods.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}
