package main

import (
	"os"
	"path/filepath"
	"testing"
)

// docs/modules.md, docs/cli.md and docs/playbook.schema.json are generated (make docs) and checked
// in: this fails when they are stale.
func TestGeneratedDocsAreCurrent(t *testing.T) {
	// defaults that come from the environment, as on a fresh machine
	for _, k := range []string{"KUBEPLAY_INVENTORY", "KUBEPLAY_KNOWN_HOSTS", "XDG_STATE_HOME"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	if out, code := run(t, "gen-docs", dir); code != 0 {
		t.Fatalf("gen-docs: exit %d: %s", code, out)
	}
	for _, name := range []string{"modules.md", "cli.md", "playbook.schema.json"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("docs/%s is stale: run make docs", name)
		}
	}
}
