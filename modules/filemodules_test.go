package modules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/transport/local"
)

// snapshot is every file under dir (but kubeplay's backups) with its mode
// and content.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || strings.Contains(p, ".kubeplay-") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %s", rel, info.Mode())
		if info.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", c)
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// runSteps runs steps on the runner machine over the local connection and
// returns the outcome of each host.end, in order.
func runSteps(t *testing.T, steps string, check bool) ([]events.Outcome, error) {
	t.Helper()
	yml := "apiVersion: kubeplay/v1\nkind: Playbook\nname: files\nplays:\n  - hosts: localhost\n    steps:\n" + steps
	pb, err := playbook.Load("files.yaml", []byte(yml), modules.Builtin())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	rec := &events.Recorder{}
	_, err = runner.Run(context.Background(), pb, inventory.New(), runner.Options{Local: local.Conn{}, Check: check, Sink: rec, Diff: true})
	var out []events.Outcome
	for _, e := range rec.Filter(events.HostEnd) {
		out = append(out, e.Outcome)
	}
	return out, err
}

// The file modules over the local connection in a temporary directory:
// --check predicts a change and touches nothing, the run makes it, a
// second run changes nothing, and a later failure undoes it.
func TestFileModulesCheckRunIdempotenceUndo(t *testing.T) {
	kubelet := "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\n"
	cases := []struct {
		name  string
		setup map[string]string // files relative to the directory
		step  string            // D is the directory
		want  map[string]string // file -> a substring it must hold ("" : it must not exist)
	}{
		{"copy", map[string]string{"app.conf": "old\n"}, `copy: {dest: D/app.conf, content: "new\n"}`, map[string]string{"app.conf": "new\n"}},
		{"copy creates", nil, `copy: {dest: D/app.conf, content: "new\n", mode: "0600"}`, map[string]string{"app.conf": "new\n"}},
		{"template", map[string]string{"t.tpl": "name={{ host.name }}\n"}, `template: {src: D/t.tpl, dest: D/out.conf}`, map[string]string{"out.conf": "name=localhost\n"}},
		{"file directory", nil, `file: {path: D/sub, state: directory}`, nil},
		{"file absent", map[string]string{"gone.conf": "x\n"}, `file: {path: D/gone.conf, state: absent}`, map[string]string{"gone.conf": ""}},
		{"move", map[string]string{"a.conf": "moved\n"}, `move: {src: D/a.conf, dest: D/b.conf}`, map[string]string{"a.conf": "", "b.conf": "moved\n"}},
		{"line-edit", map[string]string{"cfg": "a=1\nb=2\n"}, `line-edit: {path: D/cfg, regexp: '^b=', line: 'b=3'}`, map[string]string{"cfg": "a=1\nb=3\n"}},
		{"yaml-edit", map[string]string{"y.yaml": "a: 1 # keep me\nb: 2\n"}, `yaml-edit: {path: D/y.yaml, ops: [{op: set, path: b, value: 3}]}`, map[string]string{"y.yaml": "b: 3"}},
		{"edit-kubelet-config", map[string]string{"config.yaml": kubelet}, `edit-kubelet-config: {path: D/config.yaml, set: {cgroupDriver: systemd}}`, map[string]string{"config.yaml": "cgroupDriver: systemd"}},
		{"toml-edit", map[string]string{"config.toml": "[a.runc.options]\n  SystemdCgroup = false # keep me\n[b.options]\n  SystemdCgroup = false\n"},
			`toml-edit: {path: D/config.toml, table: a.runc.options, set: {SystemdCgroup: true}}`,
			map[string]string{"config.toml": "[a.runc.options]\n  SystemdCgroup = true # keep me\n[b.options]\n  SystemdCgroup = false\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			setup := func() {
				os.RemoveAll(dir)
				os.MkdirAll(dir, 0o755)
				for f, content := range c.setup {
					os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644)
				}
			}
			step := "      - " + strings.ReplaceAll(c.step, "D/", dir+"/") + "\n"
			setup()
			before := snapshot(t, dir)

			out, err := runSteps(t, step, true)
			if err != nil || len(out) != 1 || out[0] != events.Changed || snapshot(t, dir) != before {
				t.Fatalf("--check: %v %v; changed the directory: %v", out, err, snapshot(t, dir) != before)
			}
			out, err = runSteps(t, step, false)
			if err != nil || len(out) != 1 || out[0] != events.Changed {
				t.Fatalf("run: %v %v", out, err)
			}
			for f, want := range c.want {
				b, rerr := os.ReadFile(filepath.Join(dir, f))
				if want == "" && rerr == nil || want != "" && !strings.Contains(string(b), want) {
					t.Errorf("%s: %q (%v), want %q", f, b, rerr, want)
				}
			}
			if c.name == "yaml-edit" && !strings.Contains(snapshot(t, dir), "# keep me") {
				t.Error("yaml-edit lost a comment")
			}
			out, err = runSteps(t, step, false)
			if err != nil || len(out) != 1 || out[0] != events.OK {
				t.Fatalf("second run: %v %v", out, err)
			}
			// from the start again: a failure after the step undoes it
			setup()
			out, err = runSteps(t, step+"      - command: {argv: ['false']}\n", false)
			if err == nil || len(out) != 2 || out[0] != events.Changed {
				t.Fatalf("run with a failure after: %v %v", out, err)
			}
			if got := snapshot(t, dir); got != before {
				t.Fatalf("not undone:\n got %s\nwant %s", got, before)
			}
		})
	}
}
