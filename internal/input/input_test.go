package input

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFileRefusesDevicesAndLargeFiles(t *testing.T) {
	if _, err := ReadFile("/dev/zero", 1<<20); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("/dev/zero: %v", err)
	}
	dir := t.TempDir()
	if _, err := ReadFile(dir, 1<<20); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("a directory: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2000), 0o600)
	if _, err := ReadFile(big, 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("2000 bytes over a 1000-byte limit: %v", err)
	}
	if b, err := ReadFile(big, 2000); err != nil || len(b) != 2000 {
		t.Fatalf("at the limit: %d bytes, %v", len(b), err)
	}
}

func TestYAMLDepthBOMAndSize(t *testing.T) {
	deep := strings.Repeat("[", 200000)
	if _, err := YAML("x.yaml", []byte("a: 1\nb: "+deep), MaxPlaybook); !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "x.yaml:2:") {
		t.Fatalf("deep: %v", err)
	}
	ok := "a: {b: [1, 2, {c: d}]}\ns: '[[[[ not nesting'\nq: \"{{ x }} \\\" [[[\"\n# [[[[[[ a comment\n"
	ok += strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "\n"
	got, err := YAML("ok.yaml", []byte("\xef\xbb\xbf"+ok), MaxPlaybook)
	if err != nil || string(got) != ok {
		t.Fatalf("ok: %q %v", got, err)
	}
	// an apostrophe in a block scalar does not hide what follows it
	hidden := "x: |\n  don't\n  it's 'open\ny: " + deep
	if _, err := YAML("h.yaml", []byte(hidden), MaxPlaybook); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("hidden after a quote: %v", err)
	}
	if _, err := YAML("big.yaml", make([]byte, 11), 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("size: %v", err)
	}
}
