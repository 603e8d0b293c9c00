package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestNodeMetadataModules: label, annotate and taint on a lab Node:
// --check changes nothing, a run has its effect, a second run changes
// nothing, and a later failure puts everything back as it was.
func TestNodeMetadataModules(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	snapshot := func() string {
		n, err := k.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, m := range []map[string]string{n.Labels, n.Annotations} {
			for _, key := range []string{"kubeplay.e2e/role", "kubernetes.io/os", "kubeadm.alpha.kubernetes.io/cri-socket"} {
				b.WriteString(key + "=" + m[key] + ";")
			}
		}
		for _, x := range n.Spec.Taints {
			b.WriteString(x.ToString() + ";")
		}
		return b.String()
	}
	before := snapshot()
	src := func(extra string) string {
		return `apiVersion: kubeplay/v1
kind: Playbook
name: meta
plays:
  - hosts: w1
    steps:
      - name: label
        label: {set: {kubeplay.e2e/role: edge}}
      - name: annotate
        annotate: {set: {kubeadm.alpha.kubernetes.io/cri-socket: "unix:///var/run/cri-dockerd.sock"}}
      - name: taint
        taint: {key: kubeplay.e2e/maintenance, value: "yes", effect: NoSchedule}
` + extra
	}
	opts := func(o *runner.Options) { o.Kube = k }
	r := runPlaybook(t, l, src(""), func(o *runner.Options) { opts(o); o.Check = true })
	if r.err != nil || r.recap.Totals().Changed != 3 || snapshot() != before {
		t.Fatalf("--check: %v, %d changed, state %s", r.err, r.recap.Totals().Changed, snapshot())
	}
	r = runPlaybook(t, l, src(""), opts)
	if r.err != nil || r.recap.Totals().Changed != 3 {
		t.Fatalf("run: %v %d", r.err, r.recap.Totals().Changed)
	}
	after := snapshot()
	for _, want := range []string{"kubeplay.e2e/role=edge", "cri-socket=unix:///var/run/cri-dockerd.sock", "kubeplay.e2e/maintenance=yes:NoSchedule"} {
		if !strings.Contains(after, want) {
			t.Errorf("w1 lacks %s: %s", want, after)
		}
	}
	if r = runPlaybook(t, l, src(""), opts); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second run: %v %d", r.err, r.recap.Totals().Changed)
	}
	// a failure after the edits rolls them back: first undo ours, then
	// run again from the original state with a failing step
	clean := src("")
	clean = strings.Replace(clean, "label: {set: {kubeplay.e2e/role: edge}}", "label: {remove: [kubeplay.e2e/role]}", 1)
	clean = strings.Replace(clean, `annotate: {set: {kubeadm.alpha.kubernetes.io/cri-socket: "unix:///var/run/cri-dockerd.sock"}}`, `annotate: {set: {kubeadm.alpha.kubernetes.io/cri-socket: "`+annotation(before)+`"}}`, 1)
	clean = strings.Replace(clean, `value: "yes", effect: NoSchedule}`, `state: absent}`, 1)
	if r = runPlaybook(t, l, clean, opts); r.err != nil || snapshot() != before {
		t.Fatalf("removing: %v, %s", r.err, snapshot())
	}
	r = runPlaybook(t, l, src("      - assert: {that: ['false']}\n"), opts)
	if r.err == nil {
		t.Fatal("the failing play succeeded")
	}
	if got := snapshot(); got != before {
		t.Fatalf("rollback left w1 as %s, want %s", got, before)
	}
}

// annotation is the cri-socket value recorded in a snapshot.
func annotation(snap string) string {
	const key = "kubeadm.alpha.kubernetes.io/cri-socket="
	i := strings.LastIndex(snap, key)
	rest := snap[i+len(key):]
	return rest[:strings.IndexByte(rest, ';')]
}

// TestRestartAndWaitPods restarts CoreDNS pods one at a time and then
// waits for pods newer than the restart; a wait for a restart that did not
// happen times out naming the pods.
func TestRestartAndWaitPods(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	list := func() map[string]bool {
		pods, err := k.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, p := range pods.Items {
			out[p.Name] = true
		}
		return out
	}
	old := list()
	mark := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	time.Sleep(1100 * time.Millisecond)
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: pods
plays:
  - hosts: localhost
    steps:
      # a lab that just came up may still be starting CoreDNS, and
      # restart-pods refuses pods that are not all Ready
      - wait-pods-ready: {selector: k8s-app=kube-dns, timeout: 2m, interval: 500ms}
      - name: restart
        restart-pods: {selector: k8s-app=kube-dns, timeout: 60s, interval: 500ms}
        register: restarted
      - wait-pods-ready: {selector: k8s-app=kube-dns, newer_than: "` + mark + `", timeout: 30s, interval: 500ms}
      - assert: {that: ['len(restarted.data.restarted) == ` + strconv.Itoa(len(old)) + `']}
  - hosts: cp1
    steps:
      - wait-pods-ready: {static: kube-apiserver, timeout: 30s}
`
	r := runPlaybook(t, l, src, func(o *runner.Options) { o.Kube = k })
	if r.err != nil {
		t.Fatal(r.err)
	}
	now := list()
	if len(now) != len(old) {
		t.Fatalf("%d coredns pods now, %d before", len(now), len(old))
	}
	for n := range now {
		if old[n] {
			t.Fatalf("%s was not restarted", n)
		}
	}
	// nothing restarts: a wait for pods newer than the step times out
	r = runPlaybook(t, l, `apiVersion: kubeplay/v1
kind: Playbook
name: wait
plays:
  - hosts: localhost
    steps:
      - wait-pods-ready: {selector: k8s-app=kube-dns, newer_than: step, timeout: 2s, interval: 500ms}
`, func(o *runner.Options) { o.Kube = k })
	if r.err == nil || !strings.Contains(r.err.Error(), "before the restart") {
		t.Fatalf("want a timeout naming pods started before: %v", r.err)
	}
}

func dyn(t *testing.T, l *lab.Lab) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", l.KubeconfigFile())
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGenericObjectModules: k8s-apply (server-side, dry run in --check,
// idempotent, waits for a condition), k8s-patch of a Node's status
// subresource (an extended resource), and k8s-delete that waits until the
// namespace is gone; a failure after the apply deletes what it created.
func TestGenericObjectModules(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	ns := "kpobj-" + strconv.FormatInt(time.Now().Unix()%100000, 10)
	defer k.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	defer k.CoreV1().Nodes().Patch(ctx, "w2", types.JSONPatchType, []byte(`[{"op":"remove","path":"/status/capacity/example.com~1dongle"}]`), metav1.PatchOptions{}, "status")
	opts := func(o *runner.Options) { o.Kube, o.Dynamic = k, dyn(t, l) }
	apply := `apiVersion: kubeplay/v1
kind: Playbook
name: objects
plays:
  - hosts: localhost
    steps:
      - name: apply
        k8s-apply:
          manifest: |
            apiVersion: v1
            kind: Namespace
            metadata: {name: ` + ns + `}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: ` + ns + `}
            data: {mode: "a"}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: ` + ns + `}
            spec:
              replicas: 1
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  nodeSelector: {kubeplay.lab/node: "true"}
                  tolerations: [{operator: Exists}]
                  containers: [{name: web, image: registry.k8s.io/pause:3.10}]
          wait_for: [{kind: Deployment, name: web, condition: Available}]
          timeout: 60s
          interval: 500ms
`
	// --check: a server-side dry run creates nothing
	r := runPlaybook(t, l, apply, func(o *runner.Options) { opts(o); o.Check = true })
	if r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("--check: %v %d", r.err, r.recap.Totals().Changed)
	}
	if _, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Fatal("--check created the namespace")
	}
	r = runPlaybook(t, l, apply, opts)
	if r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("apply: %v %d", r.err, r.recap.Totals().Changed)
	}
	if cm, err := k.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{}); err != nil || cm.Data["mode"] != "a" {
		t.Fatalf("configmap: %+v %v", cm, err)
	}
	if d, err := k.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil || d.Status.AvailableReplicas != 1 {
		t.Fatalf("deployment not available after the wait: %+v %v", d.Status, err)
	}
	if r = runPlaybook(t, l, apply, opts); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second apply: %v %d changed", r.err, r.recap.Totals().Changed)
	}
	// a changed field: --check predicts it, the run makes it
	changed := strings.Replace(apply, `data: {mode: "a"}`, `data: {mode: "b"}`, 1)
	if r = runPlaybook(t, l, changed, func(o *runner.Options) { opts(o); o.Check = true }); r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("--check of a change: %v %d", r.err, r.recap.Totals().Changed)
	}
	if cm, _ := k.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{}); cm.Data["mode"] != "a" {
		t.Fatal("--check changed the configmap")
	}

	// patch a Node's status: an extended resource, as the docs do
	patch := `apiVersion: kubeplay/v1
kind: Playbook
name: patch
plays:
  - hosts: w2
    steps:
      - k8s-patch:
          api_version: v1
          kind: Node
          subresource: status
          type: json
          patch: [{op: add, path: /status/capacity/example.com~1dongle, value: "4"}]
`
	if r = runPlaybook(t, l, patch, opts); r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("patch: %v %d", r.err, r.recap.Totals().Changed)
	}
	n, _ := k.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{})
	if q := n.Status.Capacity["example.com/dongle"]; q.String() != "4" {
		t.Fatalf("w2 capacity: %v", n.Status.Capacity)
	}

	// delete the namespace and wait until it is gone
	del := `apiVersion: kubeplay/v1
kind: Playbook
name: delete
plays:
  - hosts: localhost
    steps:
      - k8s-delete: {api_version: v1, kind: Namespace, name: ` + ns + `, timeout: 90s}
`
	if r = runPlaybook(t, l, del, opts); r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("delete: %v", r.err)
	}
	if _, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Fatal("the namespace is still there")
	}
	if r = runPlaybook(t, l, del, opts); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second delete: %v %d", r.err, r.recap.Totals().Changed)
	}

	// a failure after an apply deletes what the apply created
	only := `apiVersion: kubeplay/v1
kind: Playbook
name: undo
plays:
  - hosts: localhost
    steps:
      - k8s-apply:
          manifest: |
            apiVersion: v1
            kind: Namespace
            metadata: {name: ` + ns + `-rb}
      - assert: {that: ['false']}
`
	if r = runPlaybook(t, l, only, opts); r.err == nil {
		t.Fatal("the failing play succeeded")
	}
	waitFor(t, 60*time.Second, "the rolled-back namespace is gone", func() (bool, string) {
		nsObj, err := k.CoreV1().Namespaces().Get(ctx, ns+"-rb", metav1.GetOptions{})
		if err != nil {
			return true, ""
		}
		return nsObj.DeletionTimestamp != nil, "still active"
	})
}

// TestKubeadmCheckExpiration parses kubeadm's own JSON report on cp1.
func TestKubeadmCheckExpiration(t *testing.T) {
	l := lab.Start(t)
	r := runPlaybook(t, l, `apiVersion: kubeplay/v1
kind: Playbook
name: expiry
plays:
  - hosts: cp1
    steps:
      - kubeadm: {action: certs-check-expiration}
        register: exp
      - assert:
          that:
            - 'len(exp.data.certificates) >= 10 && len(exp.data.cas) == 3'
            - 'exp.data.min_residual_seconds > 300 * 24 * 3600'
            - 'any(exp.data.certificates, {.name == "apiserver" && .ca == "ca" && !.missing})'
            - '!exp.changed'
`, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
}

// TestKubeadmKubeletConfigPhase: a node-local edit of config.yaml is
// overwritten by kubeadm upgrade node phase kubelet-config from the
// ConfigMap (why such node-local edits do not persist across kubeadm
// upgrades: it writes the node's file from the ConfigMap); kubeplay reports
// that as a change, and a second run as none.
func TestKubeadmKubeletConfigPhase(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	orig, _ := l.Exec(ctx, "w1", "cat /var/lib/kubelet/config.yaml")
	defer l.Exec(ctx, "w1", "rm -f /var/lib/kubelet/config.yaml.kubeplay-*")
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: phase
plays:
  - hosts: w1
    steps:
      - name: local edit
        edit-kubelet-config: {set: {shutdownGracePeriod: 33s}}
      - name: phase
        kubeadm: {action: upgrade-node-phase, phase: kubelet-config}
        register: phase
      - name: again
        kubeadm: {action: upgrade-node-phase, phase: kubelet-config}
        register: again
      - assert: {that: ['phase.changed && !again.changed']}
`
	r := runPlaybook(t, l, src, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	now, _ := l.Exec(ctx, "w1", "cat /var/lib/kubelet/config.yaml")
	if strings.Contains(now, "33s") {
		t.Fatalf("the node-local edit survived the phase:\n%s", now)
	}
	if now != orig {
		t.Logf("config.yaml differs from before the test (kubeadm rewrote it from the ConfigMap)")
	}
}
