package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/etcdsnap"
	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

func bundled(t *testing.T, name string) string {
	t.Helper()
	src, err := playbooks.Source(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

func TestBundledEtcdBackup(t *testing.T) {
	l := lab.Start(t)
	dir := t.TempDir()
	for range 3 {
		r := runPlaybook(t, l, bundled(t, "etcd-backup"), func(o *runner.Options) { o.Params = map[string]any{"dir": dir, "keep": 2} })
		if r.err != nil {
			t.Fatal(r.err)
		}
		// a plaintext snapshot holds every Secret: the recap says so,
		// naming the file
		ws := r.recap.Warnings()
		if len(ws) != 1 || !strings.Contains(ws[0].Msg, dir+"/etcd-backup-") || !strings.Contains(ws[0].Msg, "is plaintext") {
			t.Fatalf("recap warnings of a plaintext backup: %+v", ws)
		}
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "etcd-backup-*.db"))
	if len(snaps) != 2 {
		t.Fatalf("keep 2: %v", snaps)
	}
	for _, s := range snaps {
		if st, err := etcdsnap.Verify(s); err != nil || st.Integrity != "ok" || st.Revision == 0 {
			t.Fatalf("%s: %+v %v", s, st, err)
		}
		// the checksum file works with the standard tool, from the snapshot's dir
		cmd := exec.Command("sha256sum", "-c", filepath.Base(s)+".sha256")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), ": OK") {
			t.Fatalf("sha256sum -c: %s %v", out, err)
		}
	}
}

func TestBundledChangePackageRepo(t *testing.T) {
	l := lab.Start(t)
	v, _ := lab.LoadVersions(l.ScriptsDir())
	ctx := context.Background()
	const file = "/etc/apt/sources.list.d/kubernetes.list"
	before := nodeFile(t, l, "w2", file)
	t.Cleanup(func() {
		l.Exec(ctx, "w2", "cat > "+file+" <<'EOF'\n"+before+"\nEOF\nrm -f "+file+".kubeplay-*; apt-get update -q >/dev/null 2>&1")
	})
	to := v.Kube[1][:strings.LastIndex(v.Kube[1], ".")]
	params := func(minor string) func(*runner.Options) {
		return func(o *runner.Options) { o.Params = map[string]any{"minor": minor, "hosts": "w2"} }
	}
	// check mode predicts and changes nothing
	r := runPlaybook(t, l, bundled(t, "change-package-repo"), func(o *runner.Options) { params(to)(o); o.Check = true })
	if r.err != nil || nodeFile(t, l, "w2", file) != before {
		t.Fatalf("check mode: %v; file now %s", r.err, nodeFile(t, l, "w2", file))
	}
	r = runPlaybook(t, l, bundled(t, "change-package-repo"), params(to))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := nodeFile(t, l, "w2", file); !strings.Contains(got, "/v"+to+"/deb/") {
		t.Fatalf("repository after the play: %s", got)
	}
	// a minor the repositories do not carry: swap-repo refuses to skip,
	// and the file stays on the current minor
	r = runPlaybook(t, l, bundled(t, "change-package-repo"), params("1.99"))
	if r.err == nil || !strings.Contains(nodeFile(t, l, "w2", file), "/v"+to+"/deb/") {
		t.Fatalf("a skipped minor must be refused: %v", r.err)
	}
}
