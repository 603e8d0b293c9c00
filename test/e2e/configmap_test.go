package e2e

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestConfigMapEditKubeletConfigRoundTrip edits kubeadm's kubelet-config
// ConfigMap in the lab: only the edited field changes, a second run changes
// nothing, a field the kubelet does not know is refused, and a later
// failure rolls the text back byte for byte.
func TestConfigMapEditKubeletConfigRoundTrip(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	read := func() string {
		cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["kubelet"]
	}
	orig := read()
	defer func() {
		if read() != orig {
			cm, _ := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
			cm.Data["kubelet"] = orig
			k.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{})
		}
	}()
	step := func(set string) string {
		return `apiVersion: kubeplay/v1
kind: Playbook
name: cm
plays:
  - hosts: localhost
    steps:
      - name: edit
        configmap-edit:
          candidates: [kubelet-config, kubelet-config-1.37]
          key: kubelet
          ops: [{op: set, path: ` + set + `}]
`
	}
	opts := func(o *runner.Options) { o.Kube = k }
	r := runPlaybook(t, l, step("shutdownGracePeriod, value: 45s"), opts)
	if r.err != nil {
		t.Fatal(r.err)
	}
	now := read()
	var removed, added []string
	for _, line := range strings.Split(orig, "\n") {
		if !strings.Contains(now, line+"\n") {
			removed = append(removed, line)
		}
	}
	for _, line := range strings.Split(now, "\n") {
		if !strings.Contains(orig, line+"\n") {
			added = append(added, line)
		}
	}
	if strings.Join(removed, "|") != "shutdownGracePeriod: 0s" || strings.Join(added, "|") != "shutdownGracePeriod: 45s" {
		t.Fatalf("removed %q, added %q", removed, added)
	}
	if r = runPlaybook(t, l, step("shutdownGracePeriod, value: 45s"), opts); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second run: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	// a field the kubelet does not know: refused, nothing written
	if r = runPlaybook(t, l, step("shutdownGracePerod, value: 45s"), opts); r.err == nil || !strings.Contains(r.err.Error(), "shutdownGracePerod") {
		t.Fatalf("unknown field: %v", r.err)
	}
	if read() != now {
		t.Fatal("a refused edit wrote")
	}
	// from the original text, a failure after the edit rolls it back
	cm, _ := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	cm.Data["kubelet"] = orig
	if _, err := k.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r = runPlaybook(t, l, step("cgroupDriver, value: cgroupfs")+"      - assert: {that: ['false']}\n", opts)
	if r.err == nil {
		t.Fatal("the failing play succeeded")
	}
	if read() != orig {
		t.Fatalf("rollback left:\n%s", read())
	}
}
