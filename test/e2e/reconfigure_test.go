package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestBundledKubeadmReconfigure adds a kube-apiserver flag through the
// cluster's configuration: afterwards kubeadm-config holds it and every
// control plane's running kube-apiserver process has it on its command
// line; a second run changes nothing; removing it the same way takes it off
// every process again.
func TestBundledKubeadmReconfigure(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	k := kube(t, l)
	run := func(p map[string]any) result {
		return runPlaybook(t, l, bundled(t, "kubeadm-reconfigure"), func(o *runner.Options) { o.Params, o.Kube = p, k })
	}
	// what each control plane's kube-apiserver process runs with (lab
	// nodes share the PID namespace: a node's own is the one advertising
	// its address)
	procs := func() map[string]string {
		out := map[string]string{}
		all, _ := l.Exec(ctx, "cp1", `for p in $(pgrep -x kube-apiserver); do tr '\0' ' ' < /proc/$p/cmdline; echo; done`)
		for _, n := range []string{"cp1", "cp2", "cp3"} {
			node, _ := l.Node(n)
			for _, line := range strings.Split(all, "\n") {
				if strings.Contains(line, "--advertise-address="+node.IP+" ") {
					out[n] += line + "\n"
				}
			}
		}
		return out
	}
	cc := func() string {
		cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["ClusterConfiguration"]
	}
	add := map[string]any{"component": "kube-apiserver", "extra_args": map[string]any{"audit-log-maxage": "7"}}
	r := run(add)
	t.Cleanup(func() { run(map[string]any{"component": "kube-apiserver", "remove_args": []any{"audit-log-maxage"}}) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c := cc(); !strings.Contains(c, "name: audit-log-maxage") || !strings.Contains(c, "value: \"7\"") {
		t.Fatalf("kubeadm-config does not hold the flag:\n%s", c)
	}
	for n, cmd := range procs() {
		if strings.Count(cmd, "kube-apiserver") != 1 || !strings.Contains(cmd, "--audit-log-maxage=7") {
			t.Fatalf("%s: the running kube-apiserver must have the flag: %q", n, cmd)
		}
	}
	if r = run(add); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	r = run(map[string]any{"component": "kube-apiserver", "remove_args": []any{"audit-log-maxage"}})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Contains(cc(), "audit-log-maxage") {
		t.Fatal("kubeadm-config still holds the removed flag")
	}
	for n, cmd := range procs() {
		if strings.Count(cmd, "kube-apiserver") != 1 || strings.Contains(cmd, "audit-log-maxage") {
			t.Fatalf("%s: the flag must be gone from the running kube-apiserver: %q", n, cmd)
		}
	}
	for _, n := range []string{"cp1", "cp2", "cp3"} {
		l.Exec(ctx, n, "rm -rf /var/lib/kubeplay/backups")
	}
}
