package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kubeplay/kubeplay/failure"
)

// Paths written in a playbook resolve against its directory, whatever the
// working directory; a resume works from anywhere.
func TestPlaybookPathsResolveAgainstItsDirectory(t *testing.T) {
	state, pbDir, elsewhere, out := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(pbDir, "files"), 0o755)
	os.WriteFile(filepath.Join(pbDir, "files", "app.conf"), []byte("from the playbook's files/\n"), 0o644)
	os.MkdirAll(filepath.Join(elsewhere, "files"), 0o755)
	os.WriteFile(filepath.Join(elsewhere, "files", "app.conf"), []byte("from the working directory\n"), 0o644)
	dest, gate, seen := filepath.Join(out, "app.conf"), filepath.Join(out, "gate"), filepath.Join(out, "seen")
	os.WriteFile(filepath.Join(pbDir, "pb.yaml"), []byte(`apiVersion: kubeplay/v1
kind: Playbook
name: paths
plays:
  - hosts: localhost
    steps:
      - copy: {src: files/app.conf, dest: `+dest+`}
      - command: {argv: [cp, `+dest+`, `+seen+`]}
      - command: {argv: [test, -e, `+gate+`]}
`), 0o600)
	t.Chdir(pbDir)
	if o, code := run(t, "run", "pb.yaml", "--state-dir", state); code != failure.ExitHostFailed {
		t.Fatalf("exit %d: %s", code, o)
	}
	if b, _ := os.ReadFile(seen); string(b) != "from the playbook's files/\n" {
		t.Fatalf("copied %q", b)
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "runs", "*"))
	// from another directory: the resume finds the playbook, and its files/
	t.Chdir(elsewhere)
	os.WriteFile(gate, nil, 0o600)
	if o, code := run(t, "run", "--resume", filepath.Base(dirs[0]), "--state-dir", state); code != 0 {
		t.Fatalf("resume from another directory (exit %d): %s", code, o)
	}
	if o, code := run(t, "run", filepath.Join(pbDir, "pb.yaml"), "--state-dir", state); code != 0 {
		t.Fatalf("run from another directory (exit %d): %s", code, o)
	}
	if b, _ := os.ReadFile(dest); string(b) != "from the playbook's files/\n" {
		t.Fatalf("run from another directory copied %q", b)
	}
}
