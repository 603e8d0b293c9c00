package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The node image is what every cluster node has alike once provisioned:
// the runtime stand-in, the package repository as the docs configure it,
// and the first version's kubeadm, kubelet and kubectl installed from it
// and held. It is the overlay upper layer of one real provisioning (apt
// and dpkg, run once) and sits, read-only, between the machine's
// directories and each node's own layer. Five nodes then start installed
// instead of each unpacking the same packages. It is cached, and built
// again when anything it is made from changed.

// imageDirs are the directories a node sees copy-on-write.
var imageDirs = []string{"etc", "usr", "var", "opt", "root"}

// imageRoot holds the node image. It is a cache, but it cannot live in the
// build cache (under /root): a layer inside one of the directories it is
// layered over is refused by overlayfs.
func (l *Lab) imageRoot() string { return l.cfg.ImageDir }

// checkImageRoot refuses an image directory inside one the nodes see
// through their overlays.
func checkImageRoot(dir string) error {
	for _, d := range imageDirs {
		if rel, err := filepath.Rel("/"+d, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return fmt.Errorf("node image dir %s is inside /%s, which nodes see through overlays", dir, d)
		}
	}
	return nil
}

// imageStamp identifies what the image is made from: the provisioning
// script, the fresh-node script, the version, the packages and the
// repository's key and CA, the cache's place (written into the image), and
// the machine's own package state (the image's copies of files such as
// dpkg's status shadow the machine's).
func (l *Lab) imageStamp(kube string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", imageScript, kube, l.cacheDir())
	for _, f := range []string{
		filepath.Join(l.cfg.ScriptsDir, "node-fresh.sh"),
		filepath.Join(l.aptRoot(), ".packages"),
		l.CAFile(), l.KeyringFile(),
		"/var/lib/dpkg/status",
	} {
		if err := hashFile(h, filepath.Base(f), f); err != nil {
			return "", fmt.Errorf("node image: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

// nodeImage returns the node image's directory, building it first when
// there is none for the current stamp. Older images are removed: the lab
// is down while this runs, so no node has one mounted.
func (l *Lab) nodeImage(ctx context.Context, kube string) (dir string, built bool, err error) {
	stamp, err := l.imageStamp(kube)
	if err != nil {
		return "", false, err
	}
	if err := checkImageRoot(l.imageRoot()); err != nil {
		return "", false, err
	}
	dir = filepath.Join(l.imageRoot(), stamp)
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir, false, nil
	}
	if err := os.MkdirAll(l.imageRoot(), 0o755); err != nil {
		return "", false, err
	}
	entries, _ := os.ReadDir(l.imageRoot())
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(l.imageRoot(), e.Name())) // older images, failed builds
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	build := filepath.Join(l.imageRoot(), "build-"+hex.EncodeToString(b))
	defer os.RemoveAll(build)
	var mounts strings.Builder
	for _, d := range imageDirs {
		for _, layer := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(build, layer, d), 0o755); err != nil {
				return "", false, err
			}
		}
		fmt.Fprintf(&mounts, "mount -t overlay overlay -o lowerdir=/%[1]s,upperdir=%[2]s/upper/%[1]s,workdir=%[2]s/work/%[1]s /%[1]s\n", d, build)
	}
	// a mount namespace of its own (its mounts vanish with it), on the
	// machine's network: the repository answers on the bridge's address
	script := "set -e\n" + mounts.String() +
		"mount -t tmpfs -o mode=0755 tmpfs /run\n" +
		". " + filepath.Join(l.cfg.ScriptsDir, "node-fresh.sh") + "\n" +
		imageScript
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script)
	cmd.Env = append(nodeEnv(), l.imageEnv(kube)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("build node image: %w\n%s", err, tail(string(out), 40))
	}
	if err := os.Rename(filepath.Join(build, "upper"), dir); err != nil {
		return "", false, err
	}
	return dir, true, nil
}
