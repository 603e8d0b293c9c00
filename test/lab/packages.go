package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Versions are the lab's component versions (scripts/versions.env).
type Versions struct {
	Kube  []string // "1.36.3", "1.37.2": the first is what the lab starts at
	Extra []string // older patches: packaged (real kubeadm and kubectl), never run as a control plane
	Etcd  []string
	Kwok  string
}

// Packaged lists every version the repositories carry.
func (v Versions) Packaged() []string { return append(append([]string{}, v.Kube...), v.Extra...) }

// LoadVersions reads scripts/versions.env.
func LoadVersions(scripts string) (Versions, error) {
	b, err := os.ReadFile(filepath.Join(scripts, "versions.env"))
	if err != nil {
		return Versions{}, err
	}
	var v Versions
	for _, line := range strings.Split(string(b), "\n") {
		k, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		val = strings.Trim(val, `"`)
		switch k {
		case "KUBE_VERSIONS":
			v.Kube = strings.Fields(val)
		case "KUBE_EXTRA_VERSIONS":
			v.Extra = strings.Fields(val)
		case "ETCD_VERSIONS":
			v.Etcd = strings.Fields(val)
		case "KWOK_VERSION":
			v.Kwok = val
		}
	}
	if o := os.Getenv("KUBEPLAY_LAB_KUBE_VERSIONS"); o != "" {
		v.Kube = strings.Fields(o) // a smaller lab while developing the lab itself
	}
	if len(v.Kube) == 0 {
		return v, fmt.Errorf("versions.env: KUBE_VERSIONS is empty")
	}
	return v, nil
}

// Minor returns "1.36" for "1.36.3".
func Minor(v string) string {
	p := strings.Split(strings.TrimPrefix(v, "v"), ".")
	return p[0] + "." + p[1]
}

// DebVersion is the package version pkgs.k8s.io uses for a release.
func DebVersion(v string) string { return strings.TrimPrefix(v, "v") + "-1.1" }

func (l *Lab) cacheDir() string {
	if c := os.Getenv("KUBEPLAY_LAB_CACHE"); c != "" {
		return c
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kubeplay", "lab")
}

func (l *Lab) binDir() string  { return filepath.Join(l.cacheDir(), "lab-bin") }
func (l *Lab) aptRoot() string { return filepath.Join(l.cacheDir(), "apt") }

// RepoDir is where the repository of one minor lives, laid out like
// pkgs.k8s.io (core:/stable:/v1.36/deb/).
func (l *Lab) RepoDir(minor string) string {
	return filepath.Join(l.aptRoot(), "repo", "core:", "stable:", "v"+minor, "deb")
}

// buildComponents runs the cached builds of Kubernetes, etcd and kwok.
func (l *Lab) buildComponents(ctx context.Context, v Versions) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(l.cfg.ScriptsDir, "build-all.sh"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "KUBEPLAY_LAB_CACHE="+l.cacheDir(), "KUBE_VERSIONS="+strings.Join(v.Kube, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build lab components: %w", err)
	}
	return nil
}

// buildLabBinaries builds the kubelet stand-in (once per Kubernetes version,
// stamped with it), labnode and the lab command from this source tree. They
// follow the source rather than a version: they are rebuilt when the
// source stamp (toolchain, versions, test/lab's Go files, go.mod/go.sum)
// changed.
func (l *Lab) buildLabBinaries(ctx context.Context, v Versions) (built bool, err error) {
	root := filepath.Join(l.cfg.ScriptsDir, "..", "..", "..") // test/lab/scripts → the module root
	stamp, err := sourceStamp(ctx, root, v)
	if err != nil {
		return false, err
	}
	stampFile := filepath.Join(l.binDir(), ".source")
	if b, err := os.ReadFile(stampFile); err == nil && string(b) == stamp && l.haveBinaries(v) {
		return false, nil // built from this very source
	}
	build := func(out, pkg, ldflags string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w "+ldflags, "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w: %s", pkg, err, b)
		}
		return nil
	}
	if err := os.MkdirAll(l.binDir(), 0o755); err != nil {
		return false, err
	}
	for _, kv := range v.Packaged() {
		if err := build(filepath.Join(l.binDir(), "kubelet-v"+kv), "./test/lab/cmd/kubelet", "-X main.version=v"+kv); err != nil {
			return false, err
		}
	}
	if err := build(filepath.Join(l.binDir(), "labnode"), "./test/lab/cmd/labnode", ""); err != nil {
		return false, err
	}
	if err := build(filepath.Join(l.binDir(), "lab"), "./test/lab/cmd/lab", ""); err != nil {
		return false, err
	}
	return true, os.WriteFile(stampFile, []byte(stamp), 0o644)
}

func (l *Lab) haveBinaries(v Versions) bool {
	names := []string{"labnode", "lab"}
	for _, kv := range v.Packaged() {
		names = append(names, "kubelet-v"+kv)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(l.binDir(), n)); err != nil {
			return false
		}
	}
	return true
}

// sourceStamp identifies what the lab binaries are built from: the Go
// toolchain, the versions, go.mod and go.sum, and every Go file of
// test/lab (they import nothing else from the module).
func sourceStamp(ctx context.Context, root string, v Versions) (string, error) {
	gover, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%v\n", strings.TrimSpace(string(gover)), v.Packaged())
	files := []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
	err = filepath.WalkDir(filepath.Join(root, "test", "lab"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f) // where the tree is checked out does not matter
		if err := hashFile(h, rel, f); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashFile writes a file's name, length and content into a stamp's hash.
func hashFile(h io.Writer, name, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %d\n", name, len(b))
	_, err = h.Write(b)
	return err
}

const kubeletUnit = `[Unit]
Description=kubelet: The Kubernetes Node Agent (kubeplay lab stand-in)
Documentation=https://kubernetes.io/docs/

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=2

[Install]
WantedBy=multi-user.target
`

// the drop-in the kubeadm package ships (as in pkgs.k8s.io's packages)
const kubeadmDropIn = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

// buildPackages builds kubeadm, kubelet and kubectl .debs for every
// Kubernetes version and one signed repository per minor.
func (l *Lab) buildPackages(ctx context.Context, v Versions) (built bool, err error) {
	// the packages follow the lab binaries and the components: rebuilt
	// only when either changed
	stamp, err := l.packagesStamp(v)
	if err != nil {
		return false, err
	}
	stampFile := filepath.Join(l.aptRoot(), ".packages")
	if b, err := os.ReadFile(stampFile); err == nil && stamp != "" && string(b) == stamp && l.haveRepos(v) {
		return false, nil
	}
	if err := l.buildPackagesNow(ctx, v); err != nil {
		return false, err
	}
	// the first build also made the repository key the stamp needs
	if stamp, err = l.packagesStamp(v); err != nil {
		return false, err
	}
	return true, os.WriteFile(stampFile, []byte(stamp), 0o644)
}

func (l *Lab) haveRepos(v Versions) bool {
	for _, kv := range v.Packaged() {
		if _, err := os.Stat(filepath.Join(l.RepoDir(Minor(kv)), "InRelease")); err != nil {
			return false
		}
	}
	return true
}

// packagesStamp identifies what the packages are built from ("" when they
// must be built: no repository key yet).
func (l *Lab) packagesStamp(v Versions) (string, error) {
	src, err := os.ReadFile(filepath.Join(l.binDir(), ".source"))
	if err != nil {
		return "", fmt.Errorf("lab binaries: %w", err)
	}
	h := sha256.New()
	h.Write(src)
	for _, kv := range v.Packaged() {
		for _, b := range []string{"kubeadm", "kubectl"} {
			st, err := os.Stat(filepath.Join(l.cacheDir(), "kube", "v"+kv, b))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s %s %d %d\n", kv, b, st.Size(), st.ModTime().UnixNano())
		}
	}
	if _, err := os.Stat(l.KeyringFile()); err != nil {
		return "", nil // no key yet: build
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (l *Lab) buildPackagesNow(ctx context.Context, v Versions) error {
	work := filepath.Join(l.aptRoot(), "build")
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	if err := l.ensureRepoKey(ctx); err != nil {
		return err
	}
	minors := map[string]bool{}
	for _, kv := range v.Packaged() {
		repo := l.RepoDir(Minor(kv))
		if err := os.MkdirAll(repo, 0o755); err != nil {
			return err
		}
		minors[Minor(kv)] = true
		kubeBin := filepath.Join(l.cacheDir(), "kube", "v"+kv)
		pkgs := []struct {
			name, desc string
			files      map[string]string // path in package → source file or "=content"
		}{
			{"kubeadm", "Command-line utility for administering a Kubernetes cluster", map[string]string{
				"usr/bin/kubeadm": filepath.Join(kubeBin, "kubeadm"),
				"usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": "=" + kubeadmDropIn,
			}},
			{"kubectl", "Command-line utility for interacting with a Kubernetes cluster", map[string]string{
				"usr/bin/kubectl": filepath.Join(kubeBin, "kubectl"),
			}},
			{"kubelet", "Node agent for Kubernetes clusters (kubeplay lab stand-in)", map[string]string{
				"usr/bin/kubelet":                        filepath.Join(l.binDir(), "kubelet-v"+kv),
				"usr/lib/systemd/system/kubelet.service": "=" + kubeletUnit,
			}},
		}
		for _, p := range pkgs {
			deb := filepath.Join(repo, fmt.Sprintf("%s_%s_amd64.deb", p.name, DebVersion(kv)))
			root := filepath.Join(work, p.name+"-"+kv)
			for dst, src := range p.files {
				target := filepath.Join(root, dst)
				if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
					return err
				}
				if strings.HasPrefix(src, "=") {
					if err := os.WriteFile(target, []byte(src[1:]), 0o644); err != nil {
						return err
					}
				} else if err := copyFile(src, target, 0o755); err != nil {
					return err
				}
			}
			control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: kubeplay lab <lab@kubeplay.invalid>\nSection: admin\nPriority: optional\nHomepage: https://kubernetes.io\nDescription: %s\n",
				p.name, DebVersion(kv), p.desc)
			if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
				return err
			}
			if p.name == "kubelet" {
				post := "#!/bin/sh\nset -e\nif [ \"$1\" = configure ] && command -v systemctl >/dev/null; then systemctl enable kubelet >/dev/null 2>&1 || true; fi\n"
				if err := os.WriteFile(filepath.Join(root, "DEBIAN", "postinst"), []byte(post), 0o755); err != nil {
					return err
				}
			}
			if err := run(ctx, "dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "--build", root, deb); err != nil {
				return err
			}
		}
	}
	for m := range minors {
		if err := l.indexRepo(ctx, l.RepoDir(m)); err != nil {
			return err
		}
	}
	return os.RemoveAll(work)
}

func (l *Lab) indexRepo(ctx context.Context, repo string) error {
	sh := `set -e; cd "$1"
dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null
gzip -9c Packages > Packages.gz
apt-ftparchive -o APT::FTPArchive::Release::Origin=pkgs.k8s.io -o APT::FTPArchive::Release::Label=kubeplay-lab release . > Release
rm -f InRelease Release.gpg
gpg --batch --homedir "$2" --yes --clearsign -o InRelease Release
gpg --batch --homedir "$2" --yes -abs -o Release.gpg Release`
	return run(ctx, "bash", "-c", sh, "index", repo, l.gpgHome())
}

func (l *Lab) gpgHome() string { return filepath.Join(l.aptRoot(), "gnupg") }

// KeyringFile is the repository's public key, as nodes install it.
func (l *Lab) KeyringFile() string { return filepath.Join(l.aptRoot(), "kubernetes-apt-keyring.gpg") }

func (l *Lab) ensureRepoKey(ctx context.Context) error {
	if _, err := os.Stat(l.KeyringFile()); err == nil {
		return nil
	}
	if err := os.MkdirAll(l.gpgHome(), 0o700); err != nil {
		return err
	}
	sh := `set -e
gpg --batch --homedir "$1" --passphrase '' --quick-gen-key 'kubeplay lab repository <lab@kubeplay.invalid>' ed25519 sign never
gpg --batch --homedir "$1" --export > "$2"`
	return run(ctx, "bash", "-c", sh, "key", l.gpgHome(), l.KeyringFile())
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// EtcdBinary is the cached etcd server of the newest etcd version the lab
// builds, for tests that start a scratch etcd.
func (l *Lab) EtcdBinary() (string, error) {
	v, err := LoadVersions(l.cfg.ScriptsDir)
	if err != nil {
		return "", err
	}
	if len(v.Etcd) == 0 {
		return "", fmt.Errorf("versions.env lists no etcd version")
	}
	p := filepath.Join(l.cacheDir(), "etcd", "v"+v.Etcd[len(v.Etcd)-1], "etcd")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// KubectlBinary is the lab's build of kubectl at the lab's start version,
// the one that matches the cluster.
func (l *Lab) KubectlBinary() (string, error) { return l.KubeBinary("kubectl") }

// KubeBinary is the lab's build of a Kubernetes binary (kubeadm, kubectl,
// kube-apiserver, ...) at the lab's start version.
func (l *Lab) KubeBinary(name string) (string, error) {
	v, err := LoadVersions(l.cfg.ScriptsDir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(l.cacheDir(), "kube", "v"+v.Kube[0], name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}
