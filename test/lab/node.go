package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func bridgeUp(ctx context.Context) error {
	if err := exec.CommandContext(ctx, "ip", "link", "show", Bridge).Run(); err != nil {
		if err := run(ctx, "ip", "link", "add", Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	_ = exec.CommandContext(ctx, "ip", "addr", "add", BridgeIP+"/24", "dev", Bridge).Run() // exists is fine
	return run(ctx, "ip", "link", "set", Bridge, "up")
}

// nextIP picks the lowest free host address on the bridge.
func (l *Lab) nextIP() string {
	used := map[string]bool{}
	for _, n := range l.Nodes {
		used[n.IP] = true
	}
	for i := firstHost; i < 250; i++ {
		ip := fmt.Sprintf("10.77.0.%d", i)
		if !used[ip] {
			return ip
		}
	}
	return ""
}

// AddNode starts a new node while the lab runs.
func (l *Lab) AddNode(ctx context.Context, name, role string) (Node, error) {
	n, err := l.addNode(ctx, name, role, "")
	if err != nil {
		return n, err
	}
	return n, l.save()
}

// addNode starts a node; on a non-empty image (the node image) it starts
// with the image's packages installed.
func (l *Lab) addNode(ctx context.Context, name, role, image string) (n Node, err error) {
	defer func() {
		if err != nil {
			_ = removeNode(context.WithoutCancel(ctx), l.cfg, name) // leave nothing half made
		}
	}()
	if _, exists := l.Node(name); exists {
		return Node{}, fmt.Errorf("node %s exists", name)
	}
	if len(vethPfx+name) > 15 {
		return Node{}, fmt.Errorf("node name %q too long", name)
	}
	n = Node{Name: name, IP: l.nextIP(), Role: role}
	dir := l.nodeDir(name)
	if err := os.RemoveAll(dir); err != nil {
		return n, err
	}
	for _, d := range imageDirs {
		for _, layer := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(dir, layer, d), 0o755); err != nil {
				return n, err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ip"), []byte(n.IP+"\n"), 0o644); err != nil {
		return n, err
	}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab-"+name, "-f", key); err != nil {
		return n, err
	}
	cfg := strings.Join([]string{
		"ListenAddress " + n.IP,
		"Port 22",
		"HostKey " + key,
		"PidFile /run/sshd.pid",
		"AuthorizedKeysFile " + filepath.Join(l.cfg.NodesDir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"AllowAgentForwarding no",
		"MaxSessions 100",
		"MaxStartups 100:30:200",
		"Subsystem sftp internal-sftp",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		return n, err
	}
	ns, veth := nsPrefix+name, vethPfx+name
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", Bridge, "up"},
		{"ip", "-n", ns, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "route", "add", "default", "via", BridgeIP},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return n, fmt.Errorf("node %s: %w", name, err)
		}
	}
	// the address may have belonged to a removed node whose MAC the host
	// still remembers (a connection to it can refresh the entry after the
	// removal flushed it)
	_ = exec.CommandContext(ctx, "ip", "neigh", "flush", "to", n.IP, "dev", Bridge).Run()
	logf, err := os.OpenFile(filepath.Join(l.cfg.StateDir, "logs", name+"-sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return n, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation", "private",
		"/bin/sh", filepath.Join(l.cfg.ScriptsDir, "node-init.sh"), dir, name, image)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return n, fmt.Errorf("node %s: start: %w", name, err)
	}
	n.PID = cmd.Process.Pid
	go func() { _ = cmd.Wait() }() // reap if it dies while we run
	if err := waitPort(ctx, n.IP+":22", 15*time.Second); err != nil {
		return n, fmt.Errorf("node %s: sshd did not come up (see %s): %w", name, logf.Name(), err)
	}
	l.Nodes = append(l.Nodes, n)
	return n, nil
}

// RemoveNode stops a node and deletes everything it had.
func (l *Lab) RemoveNode(ctx context.Context, name string) error {
	if err := removeNode(ctx, l.cfg, name); err != nil {
		return err
	}
	for i, n := range l.Nodes {
		if n.Name == name {
			l.Nodes = append(l.Nodes[:i], l.Nodes[i+1:]...)
			break
		}
	}
	return l.save()
}

// StopSSHD kills a node's sshd, leaving the node otherwise as it is (a
// failed host for tests). The node's mount namespace goes with it.
func (l *Lab) StopSSHD(name string) error {
	n, ok := l.Node(name)
	if !ok {
		return fmt.Errorf("no node %s", name)
	}
	return syscall.Kill(n.PID, syscall.SIGKILL)
}

func removeNode(ctx context.Context, cfg Config, name string) error {
	ns := nsPrefix + name
	// a later node may reuse the address: forget the old neighbour entry
	if b, err := os.ReadFile(filepath.Join(cfg.NodesDir, name, "ip")); err == nil {
		_ = exec.CommandContext(ctx, "ip", "neigh", "flush", "to", strings.TrimSpace(string(b)), "dev", Bridge).Run()
	}
	if err := killNetns(ctx, ns); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		if err := run(ctx, "ip", "netns", "del", ns); err != nil {
			return err
		}
	}
	// the veth pair usually goes with the namespace, asynchronously
	if exec.CommandContext(ctx, "ip", "link", "show", vethPfx+name).Run() == nil {
		if err := run(ctx, "ip", "link", "del", vethPfx+name); err != nil &&
			exec.CommandContext(ctx, "ip", "link", "show", vethPfx+name).Run() == nil {
			return err
		}
	}
	// the node's mount namespace died with its last process, so its overlay
	// upper and work dirs are no longer mounted anywhere
	return os.RemoveAll(filepath.Join(cfg.NodesDir, name))
}

// killNetns ends every process inside a network namespace.
func killNetns(ctx context.Context, ns string) error {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := netnsPids(ctx, ns)
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, sig)
			_ = syscall.Kill(p, syscall.SIGCONT) // a stopped process acts on SIGTERM only when continued
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && len(netnsPids(ctx, ns)) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if pids := netnsPids(ctx, ns); len(pids) > 0 {
		return fmt.Errorf("netns %s: processes %v survive SIGKILL", ns, pids)
	}
	return nil
}

// netnsPids lists the processes whose network namespace is ns, by
// comparing namespace inodes under /proc (zombies have none and are skipped).
func netnsPids(_ context.Context, ns string) []int {
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &want); err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Down removes every netns, link, mount and process the lab created, and
// its node directories. It is idempotent and touches nothing else.
func Down(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	out, _ := output(ctx, "ip", "netns", "list")
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		if err := removeNode(ctx, cfg, strings.TrimPrefix(f[0], nsPrefix)); err != nil {
			errs = append(errs, err)
		}
	}
	stopPIDFile(filepath.Join(cfg.StateDir, "apt-server.pid"))
	stopPIDFile(filepath.Join(cfg.StateDir, "kwok.pid"))
	if exec.CommandContext(ctx, "ip", "link", "show", Bridge).Run() == nil {
		// (another lab down may delete it meanwhile: gone is what is wanted)
		if err := run(ctx, "ip", "link", "del", Bridge); err != nil && exec.CommandContext(ctx, "ip", "link", "show", Bridge).Run() == nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		_ = os.RemoveAll(cfg.NodesDir)
		_ = os.Remove(filepath.Join(cfg.StateDir, "lab.json"))
	}
	return errors.Join(errs...)
}

// runnerKey creates the runner's SSH key (once) and authorizes it on nodes.
func (l *Lab) runnerKey(ctx context.Context) error {
	if _, err := os.Stat(l.KeyFile()); err != nil {
		if err := run(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubeplay-lab-runner", "-f", l.KeyFile()); err != nil {
			return err
		}
	}
	pub, err := os.ReadFile(l.KeyFile() + ".pub")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.cfg.NodesDir, "authorized_keys"), pub, 0o644)
}

func (l *Lab) writeKnownHosts() error {
	var b strings.Builder
	for _, n := range l.Nodes {
		pub, err := os.ReadFile(filepath.Join(l.nodeDir(n.Name), "ssh_host_ed25519_key.pub"))
		if err != nil {
			return err
		}
		f := strings.Fields(string(pub))
		fmt.Fprintf(&b, "%s %s %s\n", n.IP, f[0], f[1])
	}
	return os.WriteFile(l.KnownHostsFile(), []byte(b.String()), 0o600)
}

func (l *Lab) writeInventory() error {
	var cps, ws, scratch []string
	nodes := append([]Node(nil), l.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	var hosts strings.Builder
	for _, n := range nodes {
		switch n.Role {
		case RoleControlPlane:
			cps = append(cps, n.Name)
		case RoleWorker:
			ws = append(ws, n.Name)
		default:
			scratch = append(scratch, n.Name)
		}
		fmt.Fprintf(&hosts, "  %s: {address: %s, node_name: %s}\n", n.Name, n.IP, n.Name)
	}
	inv := fmt.Sprintf(`# written by the kubeplay lab
defaults: {user: root, port: 22, identity_file: %s}
groups:
  control_plane: {hosts: [%s]}
  workers: {hosts: [%s]}
  nodes:
    children: [control_plane, workers]
    vars:
      # the lab has no container runtime and no cgroup mounts: kubeadm's
      # checks of them are the lab's, not the cluster's, to skip
      kubeadm_ignore_preflight_errors: [SystemVerification, ContainerRuntimeVersion, ImagePull]
  scratch: {hosts: [%s]}
hosts:
%s`, l.KeyFile(), strings.Join(cps, ", "), strings.Join(ws, ", "), strings.Join(scratch, ", "), hosts.String())
	return os.WriteFile(l.InventoryFile(), []byte(inv), 0o600)
}

func waitPort(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		c, err := (&net.Dialer{Timeout: 500 * time.Millisecond}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not reachable: %w", addr, last)
}
