package modules

import (
	"bytes"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEtcdRestoreParams(t *testing.T) {
	for _, tc := range []struct {
		p   EtcdRestoreParams
		err string
	}{
		{EtcdRestoreParams{Snapshot: "/s.db", Hosts: []string{"cp1"}}, "confirm: true is required"},
		{EtcdRestoreParams{Snapshot: "/s.db", Confirm: true}, "hosts are required"},
		{EtcdRestoreParams{Snapshot: "/s.db", Hosts: []string{"cp1", "cp2", "cp1"}, Confirm: true}, "listed twice"},
		{EtcdRestoreParams{Snapshot: "/s.db", Hosts: []string{"cp1", "cp2"}, Confirm: true}, ""},
	} {
		ytree.FillDefaults(&tc.p)
		err := tc.p.Validate()
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: want %q, got %v", tc.p, tc.err, err)
		}
	}
}

// The restored data dir travels as a tar stream that the node's tar
// unpacks into the same tree.
func TestTarDirRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "member", "snap"), 0o700)
	os.MkdirAll(filepath.Join(src, "member", "wal"), 0o700)
	os.WriteFile(filepath.Join(src, "member", "snap", "db"), bytes.Repeat([]byte("x"), 100000), 0o600)
	os.WriteFile(filepath.Join(src, "member", "wal", "0.wal"), []byte("wal"), 0o600)
	var buf bytes.Buffer
	if err := tarDir(&buf, src); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	cmd := exec.Command("tar", "-x", "-C", dst)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v %s", err, out)
	}
	for _, f := range []string{"member/snap/db", "member/wal/0.wal"} {
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs after the round trip: %v", f, err)
		}
	}
	if st, _ := os.Stat(filepath.Join(dst, "member", "snap", "db")); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	if err := tarDir(&bytes.Buffer{}, src); err == nil {
		t.Fatal("a symlink must be refused")
	}
}
