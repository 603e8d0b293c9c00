package modules_test

import (
	"context"
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/modules"
)

func swap(t *testing.T, file, minor string, force, check bool) (modules.Result, error) {
	t.Helper()
	p := &modules.SwapRepoParams{Minor: minor, File: file, Force: force}
	ytree.FillDefaults(p)
	p.Refresh = false
	if err := p.Validate(); err != nil {
		return modules.Result{}, err
	}
	if check {
		return modules.SwapRepo{}.Check(context.Background(), target(true), p)
	}
	return modules.SwapRepo{}.Run(context.Background(), target(false), p)
}

func TestSwapRepoFormats(t *testing.T) {
	cases := map[string]string{
		"kubernetes.list":    "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n",
		"kubernetes.sources": "Types: deb\nURIs: https://pkgs.k8s.io/core:/stable:/v1.36/deb/\nSuites: /\nSigned-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n",
		"kubernetes.repo":    "[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.36/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v1.36/rpm/repodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), name)
			os.WriteFile(f, []byte(content), 0o640)
			r, err := swap(t, f, "1.37", false, true)
			if err != nil || !r.Changed || !strings.Contains(r.Diff, "v1.37") {
				t.Fatalf("check: %+v %v", r, err)
			}
			if b, _ := os.ReadFile(f); string(b) != content {
				t.Fatal("check mode changed the file")
			}
			r, err = swap(t, f, "1.37", false, false)
			if err != nil || !r.Changed {
				t.Fatalf("run: %+v %v", r, err)
			}
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "v1.36") || strings.Count(string(b), "/v1.37/") != strings.Count(content, "/v1.36/") {
				t.Fatalf("every reference must move:\n%s", b)
			}
			st, _ := os.Stat(f)
			if st.Mode().Perm() != 0o640 {
				t.Fatalf("mode not preserved: %v", st.Mode())
			}
			bak := r.Data["backup"].(string)
			if old, err := os.ReadFile(bak); err != nil || string(old) != content {
				t.Fatalf("backup %s: %v", bak, err)
			}
			if r, err := swap(t, f, "1.37", false, false); err != nil || r.Changed {
				t.Fatalf("second run must be unchanged: %+v %v", r, err)
			}
		})
	}
}

func TestSwapRepoRefusals(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "kubernetes.list")
	os.WriteFile(f, []byte("deb https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n"), 0o644)
	for minor, want := range map[string]string{"1.38": "v1.37 first", "1.35": "down to v1.35"} {
		_, err := swap(t, f, minor, false, false)
		if !errors.Is(err, modules.ErrMinorSkew) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", minor, err)
		}
	}
	if _, err := swap(t, f, "1.35", true, false); err != nil {
		t.Fatalf("force allows going back: %v", err)
	}
	legacy := filepath.Join(dir, "legacy.list")
	os.WriteFile(legacy, []byte("deb https://apt.kubernetes.io/ kubernetes-xenial main\n"), 0o644)
	if _, err := swap(t, legacy, "1.37", false, false); !errors.Is(err, modules.ErrLegacyRepo) {
		t.Fatalf("legacy repo: %v", err)
	}
	if _, err := swap(t, filepath.Join(dir, "missing.list"), "1.37", false, false); err == nil {
		t.Fatal("a missing file must be an error")
	}
	if _, err := swap(t, f, "137", false, false); err == nil {
		t.Fatal("a malformed minor must be refused")
	}
}
