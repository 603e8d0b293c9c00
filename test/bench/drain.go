package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubeplay/kubeplay/test/lab"
)

const (
	drainNS   = "bench-drain"
	drainDeps = 4
)

// drainBench drains a worker running pods pods (drainDeps Deployments, each
// with a PodDisruptionBudget allowing several evictions at a time) with
// kubeplay's drain and with kubectl drain of the lab's version, alternating.
// Each drain moves every pod to the other worker, so both tools see the
// same setup: pods on one worker, the other one free.
func drainBench(ctx context.Context, l *lab.Lab, pods, runs int, kubeplay string) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	kubectl, err := l.KubectlBinary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kubeplay-drain-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pb := "apiVersion: kubeplay/v1\nkind: Playbook\nname: drain\nparams:\n  node: {type: string, required: true}\nplays:\n  - hosts: '{{ params.node }}'\n    steps:\n      - drain: {timeout: 10m}\n"
	if err := os.WriteFile(filepath.Join(dir, "drain.yaml"), []byte(pb), 0o600); err != nil {
		return err
	}
	from, to := "w1", "w2"
	if err := drainSetup(ctx, c, pods, from, to); err != nil {
		return err
	}
	defer c.CoreV1().Namespaces().Delete(context.Background(), drainNS, metav1.DeleteOptions{})
	tools := []struct {
		name string
		cmd  func(node string) *exec.Cmd
	}{
		{"kubeplay drain", func(node string) *exec.Cmd {
			return exec.Command(kubeplay, "run", filepath.Join(dir, "drain.yaml"), "-i", l.InventoryFile(), "--kubeconfig", l.KubeconfigFile(),
				"--known-hosts", l.KnownHostsFile(), "-e", "node="+node, "--no-lock", "--ssh-agent=false", "--ssh-config", "none",
				"--state-dir", filepath.Join(dir, "state"))
		}},
		{"kubectl drain", func(node string) *exec.Cmd {
			return exec.Command(kubectl, "--kubeconfig", l.KubeconfigFile(), "drain", node, "--ignore-daemonsets", "--timeout=10m")
		}},
	}
	res := map[string][]sample{}
	for r := 1; r <= runs; r++ {
		for _, tl := range tools {
			s, err := measure(tl.cmd(from))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: %s of %s (%d pods), run %d: %s wall, %s cpu, %d MiB\n", tl.name, from, pods, r, s.wall.Round(time.Millisecond), s.cpu.Round(time.Millisecond), s.rss/1024)
			res[tl.name] = append(res[tl.name], s)
			if err := uncordon(ctx, c, from); err != nil {
				return err
			}
			if err := waitSettled(ctx, c, pods, to); err != nil {
				return err
			}
			from, to = to, from
		}
	}
	w := os.Stdout
	fmt.Fprintf(w, "\n### Drain: a worker with %d pods (%d Deployments, each PDB maxUnavailable 20%%), median of %d (min–max)\n\n", pods, drainDeps, runs)
	fmt.Fprintln(w, "| tool | wall | CPU (user+sys) | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|")
	st := map[string]stats{}
	for _, tl := range tools {
		s := summarize(res[tl.name])
		st[tl.name] = s
		fmt.Fprintf(w, "| %s | %s (%s–%s) | %s (%s–%s) | %d MiB |\n", tl.name, ms(s.median.wall), ms(s.min.wall), ms(s.max.wall),
			ms(s.median.cpu), ms(s.min.cpu), ms(s.max.cpu), s.median.rss/1024)
	}
	fmt.Fprintf(w, "\n- kubeplay / kubectl: wall %.2f×\n", float64(st["kubeplay drain"].median.wall)/float64(st["kubectl drain"].median.wall))
	return nil
}

// drainSetup puts every pod on from: to is cordoned while they start.
func drainSetup(ctx context.Context, c kubernetes.Interface, pods int, from, to string) error {
	_ = c.CoreV1().Namespaces().Delete(ctx, drainNS, metav1.DeleteOptions{})
	for end := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: drainNS}}, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsAlreadyExists(err) || time.Now().After(end) {
			return fmt.Errorf("namespace %s: %w", drainNS, err)
		}
	}
	if err := cordon(ctx, c, to, true); err != nil {
		return err
	}
	per := int32(pods / drainDeps)
	for i := range drainDeps {
		name := fmt.Sprintf("app%d", i)
		labels := map[string]string{"app": name}
		_, err := c.AppsV1().Deployments(drainNS).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(per),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = c.PolicyV1().PodDisruptionBudgets(drainNS).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("20%")),
				Selector: &metav1.LabelSelector{MatchLabels: labels}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
	}
	if err := waitSettled(ctx, c, pods, from); err != nil {
		return err
	}
	return uncordon(ctx, c, to)
}

func cordon(ctx context.Context, c kubernetes.Interface, node string, on bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)
	_, err := c.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func uncordon(ctx context.Context, c kubernetes.Interface, node string) error {
	return cordon(ctx, c, node, false)
}

// waitSettled waits until every pod is Ready on node and every PDB allows
// its full number of disruptions again.
func waitSettled(ctx context.Context, c kubernetes.Interface, pods int, node string) error {
	last := ""
	for end := time.Now().Add(5 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		ready, nodes := lab.ReadyPods(ctx, c, drainNS)
		all, err := c.CoreV1().Pods(drainNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		last = fmt.Sprintf("%d ready on %v, %d pods", ready, nodes, len(all.Items))
		if ready != pods || len(nodes) != 1 || !nodes[node] || len(all.Items) != pods {
			continue
		}
		pdbs, err := c.PolicyV1().PodDisruptionBudgets(drainNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ok := len(pdbs.Items) == drainDeps
		for _, p := range pdbs.Items {
			ok = ok && p.Status.DisruptionsAllowed == int32(pods/drainDeps/5) && p.Status.ObservedGeneration == p.Generation
		}
		if ok {
			return nil
		}
		last += "; PDBs not settled"
	}
	return fmt.Errorf("pods did not settle on %s: %s", node, last)
}
