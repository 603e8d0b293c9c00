package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/failure"
)

// A step that prints a line over 16 MiB leaves a journal whose lines stay
// bounded: the run is listed, shown and resumable.
func TestHugeOutputKeepsTheJournalUsable(t *testing.T) {
	state, dir := t.TempDir(), t.TempDir()
	gate := filepath.Join(dir, "gate")
	pb := write(t, "pb.yaml", `apiVersion: kubeplay/v1
kind: Playbook
name: loud
plays:
  - hosts: localhost
    steps:
      - name: loud
        shell: {cmd: "head -c 17000000 /dev/zero | tr '\\0' a; echo; echo the end"}
      - name: gate
        command: {argv: [test, -e, `+gate+`]}
`)
	if out, code := run(t, "run", pb, "--state-dir", state); code != failure.ExitHostFailed {
		t.Fatalf("exit %d: %.2000s", code, out)
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "runs", "*"))
	if len(dirs) != 1 {
		t.Fatalf("runs: %v", dirs)
	}
	f, err := os.Open(filepath.Join(dirs[0], "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20) // every line under 1 MiB
	cut := false
	for sc.Scan() {
		cut = cut || strings.Contains(sc.Text(), `"cut":`) && strings.Contains(sc.Text(), `the end`)
	}
	if sc.Err() != nil || !cut {
		t.Fatalf("journal lines: %v; a bounded event keeping the tail: %v", sc.Err(), cut)
	}
	out, _ := run(t, "runs", "--state-dir", state)
	if !strings.Contains(out, filepath.Base(dirs[0])) || !strings.Contains(out, "failed") {
		t.Fatalf("runs: %s", out)
	}
	os.WriteFile(gate, nil, 0o600)
	if out, code := run(t, "run", "--resume", filepath.Base(dirs[0]), "--state-dir", state); code != 0 {
		t.Fatalf("resume (exit %d): %.2000s", code, out)
	}
}

// A journal damaged mid-file is reported, and never resumed from.
func TestDamagedJournalIsReportedAndNotResumed(t *testing.T) {
	state := t.TempDir()
	pb := write(t, "pb.yaml", "apiVersion: kubeplay/v1\nkind: Playbook\nname: fails\nplays:\n  - hosts: localhost\n    steps:\n      - shell: {cmd: 'true'}\n      - shell: {cmd: 'exit 1'}\n")
	if out, code := run(t, "run", pb, "--state-dir", state); code != failure.ExitHostFailed {
		t.Fatalf("exit %d: %s", code, out)
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "runs", "*"))
	id := filepath.Base(dirs[0])
	path := filepath.Join(dirs[0], "events.jsonl")
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	lines[3] = lines[3][:len(lines[3])/2] // a torn write in the middle
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)

	out, _ := run(t, "runs", "--state-dir", state)
	if !strings.Contains(out, id) || !strings.Contains(out, "damaged") {
		t.Fatalf("runs: %s", out)
	}
	out, _ = run(t, "runs", "show", id, "--state-dir", state)
	if !strings.Contains(out, "damaged: journal damaged: line 4") {
		t.Fatalf("runs show: %s", out)
	}
	out, code := run(t, "run", "--resume", id, "--state-dir", state)
	if code != failure.ExitValidation || !strings.Contains(out, "journal damaged") {
		t.Fatalf("resume (exit %d): %s", code, out)
	}
}
