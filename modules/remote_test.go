package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shConn runs commands on this machine, feeding stdin as the SSH transport
// does: a reader error ends the stream and the command sees EOF.
type shConn struct{}

func (shConn) Exec(ctx context.Context, c Cmd) (ExecResult, error) {
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if c.Stdin != nil {
		w, err := cmd.StdinPipe()
		if err != nil {
			return ExecResult{}, err
		}
		go func() { io.Copy(w, c.Stdin); w.Close() }()
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ExecResult{Stdout: out.String(), Stderr: errb.String(), RC: ee.ExitCode()}, nil
	}
	return ExecResult{Stdout: out.String(), Stderr: errb.String()}, err
}

// failingReader gives n bytes of its content, then an error (a connection
// dropping mid-stream).
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("stream cut")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// A write whose content stream is cut short never replaces the original,
// and leaves no temporary file; a whole one replaces it.
func TestWriteFileAtomicNeverCommitsAPartialStream(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	os.WriteFile(p, []byte("original\n"), 0o640)
	content := strings.Repeat("new content line\n", 4096)
	if _, err := writeFileAtomic(context.Background(), shConn{}, p, content, false, time.Time{}, fileAttrs{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != content {
		t.Fatal("the whole content must replace the file")
	}
	os.WriteFile(p, []byte("original\n"), 0o640)
	h := sha256.Sum256([]byte(content))
	sum := hex.EncodeToString(h[:])
	_, err := writeAtomicFrom(context.Background(), shConn{}, p, &failingReader{r: strings.NewReader(content), n: 1000}, sum, false, time.Time{}, fileAttrs{})
	if err == nil || !strings.Contains(err.Error(), "arrived incomplete") {
		t.Fatalf("a cut stream must fail the write: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "original\n" {
		t.Fatalf("the original must be left intact, got %d bytes", len(b))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode changed: %v", st.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*kubeplay-tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// In a static pod directory, nothing kubeplay parks beside a manifest is a
// file the kubelet would run: backups and temporary files are dot-files.
// Elsewhere they keep their visible names.
func TestParkedFilesInAStaticPodDirAreHidden(t *testing.T) {
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	if got := backupName("/etc/kubernetes/manifests/kube-apiserver.yaml", now); got != "/etc/kubernetes/manifests/.kube-apiserver.yaml.kubeplay-20261206T110000.000Z" {
		t.Errorf("backup in manifests: %s", got)
	}
	if got := backupName("/etc/containerd/config.toml", now); got != "/etc/containerd/config.toml.kubeplay-20261206T110000.000Z" {
		t.Errorf("backup elsewhere: %s", got)
	}
	dir := filepath.Join(t.TempDir(), "manifests")
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, "etcd.yaml")
	os.WriteFile(p, []byte("kind: Pod\nmetadata: {name: etcd}\n"), 0o600)
	bak, err := writeFileAtomic(context.Background(), shConn{}, p, "kind: Pod\nmetadata: {name: etcd, labels: {a: b}}\n", true, now, fileAttrs{})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var visible []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			visible = append(visible, e.Name())
		}
	}
	if len(visible) != 1 || visible[0] != "etcd.yaml" || filepath.Dir(bak) != dir || !strings.HasPrefix(filepath.Base(bak), ".etcd.yaml.kubeplay-") {
		t.Fatalf("visible files %v, backup %s", visible, bak)
	}
}
