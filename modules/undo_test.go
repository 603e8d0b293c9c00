package modules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/transport/local"
)

// undoneByTheFileModulesTest are the Undoers TestFileModulesCheckRunIdempotenceUndo
// covers through the runner; every other Undoer has a case below.
var undoneByTheFileModulesTest = []string{"copy", "template", "file", "move", "line-edit", "yaml-edit", "toml-edit", "edit-kubelet-config"}

// runWithFailure runs step, then a failing step, through the runner on the
// runner machine with cluster c: the runner hands the step's Undo its Data
// in the journal's form. It returns the rollback's events.
func runWithFailure(t *testing.T, c *fake.Clientset, step string) []events.Event {
	t.Helper()
	yml := "apiVersion: kubeplay/v1\nkind: Playbook\nname: undo\nplays:\n  - hosts: localhost\n    steps:\n      - " + step +
		"\n      - command: {argv: ['false']}\n"
	pb, err := playbook.Load("undo.yaml", []byte(yml), modules.Builtin())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	rec := &events.Recorder{}
	opts := runner.Options{Local: local.Conn{}, Sink: rec}
	if c != nil {
		opts.Kube = c
	}
	if _, err := runner.Run(context.Background(), pb, inventory.New(), opts); err == nil {
		t.Fatal("the run must fail at its second step")
	}
	ends := rec.Filter(events.HostEnd)
	if len(ends) != 2 || ends[1].Outcome != events.Failed {
		t.Fatalf("want the step done and the next one failed: %+v", ends)
	}
	return rec.Filter(events.RollbackEnd)
}

// Every Undoer, driven through the runner, puts the cluster back as it was
// when a later step fails.
func TestEveryUndoerUndoesFromItsJournaledState(t *testing.T) {
	taint := corev1.Taint{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}
	node := func() *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1",
			Labels:      map[string]string{"a": "1", "c": "3"},
			Annotations: map[string]string{"a": "1", "c": "3"}},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{taint}}}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "cfg"},
		Data: map[string]string{"text": "mode: old\n"}}
	cases := map[string]string{
		"cordon":         `cordon: {node: w1}`,
		"drain":          `drain: {node: w1, timeout: 10s}`,
		"label":          `label: {node: w1, set: {a: "2", b: "2"}, remove: [c]}`,
		"annotate":       `annotate: {node: w1, set: {a: "2", b: "2"}, remove: [c]}`,
		"taint":          `taint: {node: w1, key: k, value: x, effect: NoExecute}`,
		"configmap-edit": `configmap-edit: {namespace: kube-system, name: cfg, key: text, ops: [{op: set, path: mode, value: new}]}`,
	}
	state := func(c *fake.Clientset) string {
		n, _ := c.CoreV1().Nodes().Get(context.Background(), "w1", metav1.GetOptions{})
		m, _ := c.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "cfg", metav1.GetOptions{})
		return fmt.Sprintf("unschedulable=%v labels=%v annotations=%v taints=%v cm=%q",
			n.Spec.Unschedulable, n.Labels, n.Annotations, n.Spec.Taints, m.Data["text"])
	}
	for name, step := range cases {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientset(node(), cm.DeepCopy())
			before := state(c)
			rb := runWithFailure(t, c, step)
			if len(rb) != 1 || rb[0].Outcome != events.RolledBack {
				t.Fatalf("want one successful undo: %+v", rb)
			}
			if got := state(c); got != before {
				t.Fatalf("not undone:\n got %s\nwant %s", got, before)
			}
		})
	}
	// every Undoer has its case here or in the file modules' test
	reg := modules.Builtin()
	for _, name := range reg.Names() {
		m, _ := reg.Get(name)
		if _, ok := m.(modules.Undoer); !ok {
			continue
		}
		_, here := cases[name]
		// k8s-apply's Undo deletes objects over the dynamic client: the
		// lab's end-to-end test of k8s-apply covers it on a real API server
		if !here && !slices.Contains(undoneByTheFileModulesTest, name) && name != "k8s-apply" && name != "swap-repo" {
			t.Errorf("Undoer %s has no undo test", name)
		}
	}
}

// swap-repo's rollback of a step that changed nothing is a no-op; it used
// to fail ("no backup to restore"), and a later failure reported the host
// as not undone. Its undo of a real change restores the file.
func TestSwapRepoUndo(t *testing.T) {
	f := filepath.Join(t.TempDir(), "kubernetes.list")
	old := "deb https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n"
	for _, minor := range []string{"1.36", "1.37"} {
		t.Run("to "+minor, func(t *testing.T) {
			os.WriteFile(f, []byte(old), 0o644)
			rb := runWithFailure(t, nil, `swap-repo: {minor: "`+minor+`", file: `+f+`, refresh: false}`)
			if len(rb) != 1 || rb[0].Outcome != events.RolledBack {
				t.Fatalf("want one successful undo: %+v", rb)
			}
			if b, _ := os.ReadFile(f); string(b) != old {
				t.Fatalf("not restored: %q", b)
			}
		})
	}
}
