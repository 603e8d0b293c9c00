package lab

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start returns the running lab, bringing it up if needed, for integration
// tests. A lab already running from the same state dir (make lab-up, or
// another test package) is reused. Without root the test is skipped with the
// reason, since namespaces and mounts need it; CI runs as root.
func Start(t testing.TB) *Lab {
	t.Helper()
	return start(t, false)
}

func start(t testing.TB, exclusive bool) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab tests need root (network namespaces, mounts); run as root or in CI")
	}
	cfg := DefaultConfig()
	cfg.Pristine = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	unlock, err := lock(cfg.withDefaults().StateDir)
	if err != nil {
		t.Fatalf("lab lock: %v", err)
	}
	if exclusive {
		t.Cleanup(unlock)
	} else {
		defer unlock()
	}
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	l.locked = exclusive
	return l
}

// StartExclusive is Start for a test that changes the lab for good (an
// upgrade): it holds the lab's lock until the test ends, so that other test
// processes wait in Start and then find (and rebuild) the changed lab,
// instead of running on it halfway through.
func StartExclusive(t testing.TB) *Lab {
	t.Helper()
	return start(t, true)
}

// lock takes the lab's lock unless this process holds it already.
func (l *Lab) lock() (func(), error) {
	if l.locked {
		return func() {}, nil
	}
	return lock(l.cfg.StateDir)
}

// lock serialises lab changes between test processes.
func lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// WithNode adds a scratch node for one test and removes it afterwards.
func (l *Lab) WithNode(t testing.TB, name, role string) Node {
	t.Helper()
	ctx := context.Background()
	unlock, err := l.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// whatever an earlier, interrupted test left under this name goes first
	if err := l.RemoveNode(ctx, name); err != nil {
		t.Fatalf("remove stale node %s: %v", name, err)
	}
	n, err := l.AddNode(ctx, name, role)
	if err != nil {
		t.Fatalf("add node %s: %v", name, err)
	}
	t.Cleanup(func() {
		unlock, err := l.lock()
		if err == nil {
			defer unlock()
		}
		if err := l.RemoveNode(context.Background(), name); err != nil {
			t.Errorf("remove node %s: %v", name, err)
		}
	})
	return n
}

// NodePIDs lists the processes inside a node with the given command name
// (as in /proc/PID/comm), for fault injection.
func (l *Lab) NodePIDs(name, comm string) []int {
	var out []int
	for _, p := range netnsPids(context.Background(), nsPrefix+name) {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "comm"))
		if err == nil && strings.TrimSpace(string(b)) == comm {
			out = append(out, p)
		}
	}
	return out
}

// SudoUsers creates two login users on a node for the become tests: ops
// (sudo with password) and nopw (sudo without one). The lab's sshd takes the
// runner's key for every user. They are removed when the test ends.
func (l *Lab) SudoUsers(t testing.TB, node, password string) {
	t.Helper()
	ctx := context.Background()
	script := `set -e
for u in ops nopw; do
  id $u >/dev/null 2>&1 || useradd -m -s /bin/sh $u
done
printf 'ops:%s\n' "$PW" | chpasswd
usermod -p '*' nopw # no password, but not locked (sshd refuses locked accounts)
echo 'ops ALL=(ALL) ALL' > /etc/sudoers.d/ops
echo 'nopw ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/nopw
chmod 0440 /etc/sudoers.d/ops /etc/sudoers.d/nopw`
	if out, err := l.Exec(ctx, node, script, "PW="+password); err != nil {
		t.Fatalf("sudo users on %s: %v: %s", node, err, out)
	}
	t.Cleanup(func() {
		_, _ = l.Exec(ctx, node, "rm -f /etc/sudoers.d/ops /etc/sudoers.d/nopw; userdel -r ops; userdel -r nopw; true")
	})
}

// WithStandaloneNode is WithNode for a machine about to become a control
// plane: a scratch node with the lab's start version of the packages, and
// its kubelet running static pods from /etc/kubernetes/manifests without a
// cluster to report to. It is what a replacement machine looks like before
// etcd (or kubeadm) puts anything on it.
func (l *Lab) WithStandaloneNode(t testing.TB, name string) Node {
	t.Helper()
	n := l.WithNode(t, name, RoleScratch)
	v, err := LoadVersions(l.cfg.ScriptsDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cp := n
	cp.Role = RoleControlPlane
	if err := l.provision(ctx, cp, v.Kube[0], false); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(ctx, name, `set -e
mkdir -p /var/lib/kubelet /etc/kubernetes/manifests
cat > /var/lib/kubelet/config.yaml <<'CFG'
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
cgroupDriver: systemd
CFG
systemctl enable kubelet
systemctl restart kubelet`); err != nil {
		t.Fatalf("standalone kubelet on %s: %v", name, err)
	}
	return n
}

// MarkDirty makes the next Start rebuild the cluster: for a test that could
// not put back what it changed.
func (l *Lab) MarkDirty() error {
	l.ClusterUp = false
	return l.save()
}
