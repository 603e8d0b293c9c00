package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/playbooks"
)

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		out.WriteString(err.Error())
	}
	return out.String(), failure.ExitCode(err)
}

func TestBundledPlaybooksValidate(t *testing.T) {
	names := playbooks.Names()
	if len(names) == 0 {
		t.Fatal("no bundled playbooks")
	}
	for _, n := range names {
		if out, code := run(t, "validate", n); code != 0 {
			t.Errorf("%s: %s", n, out)
		}
		if playbooks.Doc(n) == "" {
			t.Errorf("%s has no .md", n)
		}
	}
	out, _ := run(t, "playbooks")
	for _, n := range names {
		if !strings.Contains(out, n) {
			t.Errorf("playbooks does not list %s", n)
		}
	}
}

func TestRunExitCodesAndJournal(t *testing.T) {
	state := t.TempDir()
	out, code := run(t, "run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.37.2", "--state-dir", state)
	if code != 0 || !strings.Contains(out, "PLAY RECAP") {
		t.Fatalf("code %d: %s", code, out)
	}
	_, code = run(t, "run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.39.0", "--state-dir", state)
	if code != failure.ExitHostFailed {
		t.Fatalf("skipping minors must fail with %d, got %d", failure.ExitHostFailed, code)
	}
	_, code = run(t, "run", "version-skew", "-e", "current=1.36.3", "--state-dir", state)
	if code != failure.ExitValidation {
		t.Fatalf("missing param must be a validation error, got %d", code)
	}
	_, code = run(t, "run", "no-such-playbook", "--state-dir", state)
	if code != failure.ExitValidation {
		t.Fatalf("unknown playbook: %d", code)
	}

	runs, _ := filepath.Glob(filepath.Join(state, "runs", "*", "events.jsonl"))
	if len(runs) != 2 {
		t.Fatalf("want 2 run journals (validation failures start no run), got %d", len(runs))
	}
	data, err := os.ReadFile(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var first, last events.Event
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if first.Type != events.RunStart || last.Type != events.RunEnd || first.Schema != events.Schema {
		t.Fatalf("journal framing: %+v ... %+v", first, last)
	}
}

func TestJSONOutput(t *testing.T) {
	out, code := run(t, "run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.37.2",
		"--state-dir", t.TempDir(), "--output", "json")
	if code != 0 {
		t.Fatal(out)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e events.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if e.Type == events.HostEnd {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("want 4 host results, got %d", n)
	}
}

func TestPlanAndInventory(t *testing.T) {
	inv := filepath.Join("..", "..", "inventory", "testdata", "kubespray.ini")
	out, code := run(t, "inventory", "-i", inv, "-l", "kube_control_plane[1:]")
	if code != 0 || !strings.Contains(out, "node2: {address: 10.0.0.12, port: 2222, user: ops") || strings.Contains(out, "node1: {") {
		t.Fatalf("%d %s", code, out)
	}
	out, code = run(t, "plan", "version-skew", "-e", "current=1.36.3", "-e", "target=1.37.2")
	if code != 0 || !strings.Contains(out, "BATCH 1: localhost") || !strings.Contains(out, "param target = 1.37.2") {
		t.Fatalf("%d %s", code, out)
	}
}

func TestRunsListsAndShowsJournals(t *testing.T) {
	state := t.TempDir()
	run(t, "run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.37.2", "--state-dir", state)
	run(t, "run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.39.0", "--state-dir", state)
	// a run killed mid-way: its journal stops after a step, with a torn last line
	dirs, _ := filepath.Glob(filepath.Join(state, "runs", "*"))
	if len(dirs) != 2 {
		t.Fatalf("want 2 run dirs, got %v", dirs)
	}
	b, _ := os.ReadFile(filepath.Join(dirs[0], "events.jsonl"))
	if strings.Contains(string(b), `"outcome":"failed"`) { // the failed run is the second
		dirs[0], dirs[1] = dirs[1], dirs[0]
	}
	b, _ = os.ReadFile(filepath.Join(dirs[0], "events.jsonl"))
	lines := strings.SplitAfter(string(b), "\n")
	killed := filepath.Join(state, "runs", "20991231T000000Z-killed")
	os.MkdirAll(killed, 0o700)
	os.WriteFile(filepath.Join(killed, "events.jsonl"), []byte(strings.Join(lines[:4], "")+`{"schema":1,"ty`), 0o600)

	out, code := run(t, "runs", "--state-dir", state)
	if code != 0 {
		t.Fatal(out)
	}
	states := map[string]string{}
	for _, row := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(row)
		states[f[0]] = f[len(f)-1]
	}
	if len(states) != 3 || states[filepath.Base(dirs[0])] != "ok" || states[filepath.Base(dirs[1])] != "failed" || states["20991231T000000Z-killed"] != "incomplete" {
		t.Fatalf("runs:\n%s", out)
	}
	id := filepath.Base(dirs[1])
	out, code = run(t, "runs", "show", id, "--state-dir", state)
	if code != 0 || !strings.Contains(out, "STEP [one minor at a time]") || !strings.Contains(out, "PLAY RECAP") ||
		!strings.Contains(out, "state: failed") || !strings.Contains(out, "localhost  ") {
		t.Fatalf("runs show:\n%s", out)
	}
	if out, code := run(t, "runs", "show", "../etc", "--state-dir", state); code != failure.ExitValidation {
		t.Fatalf("a path is not a run id (exit %d): %s", code, out)
	}
}

func TestResumeContinuesAFailedRun(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	log, gate := filepath.Join(dir, "log"), filepath.Join(dir, "gate")
	pb := filepath.Join(dir, "pb.yaml")
	os.WriteFile(pb, []byte(`apiVersion: kubeplay/v1
kind: Playbook
name: resumable
params:
  who: {type: string, default: me}
plays:
  - hosts: localhost
    steps:
      - name: first
        shell: {cmd: 'echo first >> `+log+`'}
        register: first
      - name: gate
        command: {argv: [test, -e, `+gate+`]}
      - name: last
        shell: {cmd: 'echo "last after {{ first.rc }}" >> `+log+`'}
`), 0o600)
	out, code := run(t, "run", pb, "-e", "who=ops", "--state-dir", state)
	if code != failure.ExitHostFailed {
		t.Fatalf("the gate must fail the first run (exit %d): %s", code, out)
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "runs", "*"))
	id := filepath.Base(dirs[0])

	// another param value: refused, naming it
	out, code = run(t, "run", "--resume", id, "-e", "who=someone", "--state-dir", state)
	if code != failure.ExitValidation || !strings.Contains(out, "param who: someone, the run had ops") {
		t.Fatalf("a changed param must be refused (exit %d): %s", code, out)
	}
	// the operator fixes the cause, and resumes: the playbook, inventory and
	// params come from the run; the first step is not run again
	os.WriteFile(gate, nil, 0o600)
	out, code = run(t, "run", "--resume", id, "--state-dir", state)
	if code != 0 || !strings.Contains(out, "resumes run "+id) {
		t.Fatalf("resume (exit %d): %s", code, out)
	}
	if b, _ := os.ReadFile(log); string(b) != "first\nlast after 0\n" {
		t.Fatalf("the first step ran again, or its registered rc was lost: %q", b)
	}
	// a finished run has nothing to resume; a changed playbook is refused
	dirs, _ = filepath.Glob(filepath.Join(state, "runs", "*"))
	for _, d := range dirs {
		if filepath.Base(d) != id {
			if out, code := run(t, "run", "--resume", filepath.Base(d), "--state-dir", state); code != failure.ExitValidation || !strings.Contains(out, "nothing to resume") {
				t.Fatalf("resuming a finished run (exit %d): %s", code, out)
			}
		}
	}
	b, _ := os.ReadFile(pb)
	os.WriteFile(pb, append(b, []byte("      - debug: {msg: added}\n")...), 0o600)
	if out, code := run(t, "run", "--resume", id, "--state-dir", state); code != failure.ExitValidation || !strings.Contains(out, "changed since the run") {
		t.Fatalf("a changed playbook must be refused (exit %d): %s", code, out)
	}
}
