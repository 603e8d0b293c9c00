package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/session"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Input that used to exhaust memory or hang is refused at once with a
// clear error, exit 2.
func TestHostileInputIsRefusedQuickly(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	deep := strings.Repeat("[", 200000)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"validate /dev/zero", []string{"validate", "/dev/zero"}, "not a regular file"},
		{"nested playbook", []string{"validate", write(t, "deep.yaml", "name: "+deep)}, "nested too deeply"},
		{"nested inventory", []string{"inventory", "-i", write(t, "inv.yaml", "hosts: "+deep)}, "nested too deeply"},
		{"aliases in -e @file", []string{"plan", "version-skew", "-e", "@" + write(t, "vars.yaml", laughs)}, "aliases are not supported"},
		{"INI range", []string{"inventory", "-i", write(t, "inv.ini", "[nodes]\nnode[1:50000000]\n")}, "hosts, at most 10000"},
		{"INI line over 64 KiB", []string{"inventory", "-i", write(t, "long.ini", "[nodes]\nn1 note="+strings.Repeat("x", 2<<20)+"\n")}, "line longer than"},
		{"hosts as a list", []string{"inventory", "-i", write(t, "list.yaml", "hosts: [a, b]\n")}, "hosts: expected a mapping of host names"},
		{"empty host name", []string{"inventory", "-i", write(t, "empty.yaml", "hosts: {\"\": {address: 10.0.0.1}}\n")}, "empty name"},
	}
	for _, c := range cases {
		start := time.Now()
		out, code := run(t, c.args...)
		if code != failure.ExitValidation || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q:\n%.500s", c.name, code, c.want, out)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %s", c.name, d)
		}
	}
}

// -e @file keeps YAML's types as before, and a UTF-8 BOM is accepted.
func TestVarsFileTypesAndBOM(t *testing.T) {
	p := write(t, "vars.yaml", "\xef\xbb\xbfn: 3\nok: true\nf: 1.5\ns: text\nl: [a, '{{ x }}']\nm: {k: v}\n")
	got, err := session.ParseExtra([]string{"@" + p, "z=9"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": int64(3), "ok": true, "f": 1.5, "s": "text", "l": []any{"a", "{{ x }}"}, "m": map[string]any{"k": "v"}, "z": "9"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	pb := write(t, "bom.yaml", "\xef\xbb\xbfapiVersion: kubeplay/v1\nkind: Playbook\nname: bom\nplays:\n  - hosts: localhost\n    steps:\n      - debug: {msg: hi}\n")
	if out, code := run(t, "validate", pb); code != 0 {
		t.Fatalf("a playbook with a BOM: %s", out)
	}
}

// Mistyped options are validation errors (exit 2), never a silent no-op.
func TestMistypedOptionsExit2(t *testing.T) {
	state := t.TempDir()
	base := []string{"run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.37.2", "--state-dir", state}
	for name, args := range map[string][]string{
		"start-at-step nosuch": append(append([]string{}, base...), "--start-at-step", "nosuch"),
		"rollback-timeout -1s": append(append([]string{}, base...), "--rollback-timeout", "-1s"),
		"output yaml":          append(append([]string{}, base...), "--output", "yaml"),
		"show nosuch --doc":    {"show", "nosuch", "--doc"},
		"show nosuch":          {"show", "nosuch"},
	} {
		if out, code := run(t, args...); code != failure.ExitValidation {
			t.Errorf("%s: exit %d, want 2: %s", name, code, out)
		}
	}
	if runs, _ := filepath.Glob(filepath.Join(state, "runs", "*")); len(runs) != 0 {
		t.Errorf("a refused run left a journal: %v", runs)
	}
}
