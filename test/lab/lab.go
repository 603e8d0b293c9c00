// Package lab brings up kubeplay's test world on one machine: nodes that are
// network namespaces on a private bridge, each with its own mount and UTS
// namespace, copy-on-write views of the system directories and its own
// OpenSSH sshd with key-only auth. Tests and `make lab-up` use it; a running
// lab is found again through its state directory and reused.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubeplay/kubeplay/test/lab/proc"
	"github.com/kubeplay/kubeplay/test/timing"
)

// Defaults of the lab network. Every address the lab uses is on this
// bridge; the bridge has no uplink and no NAT.
const (
	Bridge    = "kplab0"
	BridgeIP  = "10.77.0.1"
	Subnet    = "10.77.0.0/24"
	nsPrefix  = "kplab-"
	vethPfx   = "kpl-"
	firstHost = 11
)

// Config sizes and places a lab.
type Config struct {
	StateDir     string // user-facing files; default $KUBEPLAY_LAB_DIR or ~/.local/state/kubeplay/lab
	NodesDir     string // overlay upper/work dirs and per-node sshd files; default /srv/kubeplay-lab
	ImageDir     string // the cached node image; default $KUBEPLAY_LAB_IMAGE or /srv/kubeplay-lab-image
	ScriptsDir   string // test/lab/scripts; default found from the source tree
	ControlPlane int    // default 3
	Workers      int    // default 2
	NoCluster    bool   // nodes and sshd only (no packages, no control plane)
	// Pristine rebuilds a running lab whose cluster is no longer at the
	// start version (an upgrade ran on it), so that tests start alike.
	Pristine bool
}

// Node roles. Scratch nodes are bare sshd hosts that tests add and remove
// (they are not cluster members and not in the inventory's nodes group).
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
	RoleScratch      = "scratch"
)

// Node is one lab node.
type Node struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
	Role string `json:"role"` // control-plane or worker
	PID  int    `json:"pid"`  // the node's sshd (holder of its mount namespace)
}

// Lab is a running lab.
type Lab struct {
	cfg       Config
	locked    bool   // this process holds the lab's lock for a whole test (StartExclusive)
	Nodes     []Node `json:"nodes"`
	ClusterUp bool   `json:"cluster_up"`
}

// DefaultConfig fills in defaults from the environment.
func DefaultConfig() Config {
	c := Config{ControlPlane: 3, Workers: 2}
	return c.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.StateDir == "" {
		c.StateDir = os.Getenv("KUBEPLAY_LAB_DIR")
	}
	if c.StateDir == "" {
		home, _ := os.UserHomeDir()
		c.StateDir = filepath.Join(home, ".local", "state", "kubeplay", "lab")
	}
	if c.NodesDir == "" {
		c.NodesDir = os.Getenv("KUBEPLAY_LAB_NODES")
	}
	if c.NodesDir == "" {
		c.NodesDir = "/srv/kubeplay-lab"
	}
	if c.ImageDir == "" {
		c.ImageDir = os.Getenv("KUBEPLAY_LAB_IMAGE")
	}
	if c.ImageDir == "" {
		c.ImageDir = "/srv/kubeplay-lab-image"
	}
	if c.ScriptsDir == "" {
		c.ScriptsDir = findScripts()
	}
	if c.ControlPlane == 0 && c.Workers == 0 {
		c.ControlPlane, c.Workers = 3, 2
	}
	return c
}

// findScripts locates test/lab/scripts from the working directory upwards.
func findScripts() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "test", "lab", "scripts")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		if d == filepath.Dir(d) {
			return filepath.Join(dir, "test", "lab", "scripts")
		}
	}
}

// Paths of the files the lab writes for its users.
func (l *Lab) StateDir() string       { return l.cfg.StateDir }
func (l *Lab) ScriptsDir() string     { return l.cfg.ScriptsDir }
func (l *Lab) KeyFile() string        { return filepath.Join(l.cfg.StateDir, "ssh", "id_ed25519") }
func (l *Lab) KnownHostsFile() string { return filepath.Join(l.cfg.StateDir, "ssh", "known_hosts") }
func (l *Lab) InventoryFile() string  { return filepath.Join(l.cfg.StateDir, "inventory.yaml") }
func (l *Lab) KubeconfigFile() string { return filepath.Join(l.cfg.StateDir, "kubeconfig") }
func (l *Lab) statePath() string      { return filepath.Join(l.cfg.StateDir, "lab.json") }

// NodeDir holds a node's sshd files (its host key) and overlay dirs.
func (l *Lab) NodeDir(n string) string { return l.nodeDir(n) }

func (l *Lab) nodeDir(n string) string {
	return filepath.Join(l.cfg.NodesDir, n)
}

// ErrNotRoot is returned when the lab is started without root.
var ErrNotRoot = errors.New("the lab needs root (network namespaces, mounts)")

// Up starts the lab, or adopts a running one from its state directory.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	cfg = cfg.withDefaults()
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	l := &Lab{cfg: cfg}
	if err := l.load(); err == nil && l.healthy(ctx) == nil && l.matches() && (cfg.NoCluster || l.ClusterUp) && l.atStart(ctx) {
		if l.ClusterUp {
			if err := l.ensureServices(ctx); err != nil {
				return nil, err
			}
		}
		return l, nil
	}
	// anything half there is torn down first: up is idempotent
	if err := Down(ctx, cfg); err != nil {
		return nil, err
	}
	l = &Lab{cfg: cfg}
	for _, dir := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "ssh"), filepath.Join(cfg.StateDir, "logs"), cfg.NodesDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	// sshd reads the shared authorized_keys as the logging-in user: other
	// users (the become tests' sudoers) may pass through, not list
	if err := os.Chmod(cfg.NodesDir, 0o711); err != nil {
		return nil, err
	}
	if err := l.runnerKey(ctx); err != nil {
		return nil, err
	}
	if err := bridgeUp(ctx); err != nil {
		return nil, err
	}
	var v Versions
	image := "" // nodes of a lab without a cluster are bare
	if !cfg.NoCluster {
		var err error
		if v, err = LoadVersions(cfg.ScriptsDir); err != nil {
			return nil, err
		}
		if image, err = l.prepare(ctx, v); err != nil {
			return nil, fmt.Errorf("lab cluster: %w", err)
		}
	}
	if err := step("nodes", func() error {
		for i := 1; i <= cfg.ControlPlane; i++ {
			if _, err := l.addNode(ctx, fmt.Sprintf("cp%d", i), RoleControlPlane, image); err != nil {
				return err
			}
		}
		for i := 1; i <= cfg.Workers; i++ {
			if _, err := l.addNode(ctx, fmt.Sprintf("w%d", i), RoleWorker, image); err != nil {
				return err
			}
		}
		return l.save()
	}); err != nil {
		return nil, err
	}
	if cfg.NoCluster {
		return l, nil
	}
	if err := l.upCluster(ctx, v); err != nil {
		return nil, fmt.Errorf("lab cluster: %w", err)
	}
	l.ClusterUp = true
	return l, l.save()
}

// atStart says whether a pristine lab's cluster still runs the start
// version: ClusterConfiguration and every kubelet that reports a version.
// Without Pristine any version will do. An API that does not answer within
// 30s also counts as not at start: such a lab is rebuilt.
func (l *Lab) atStart(ctx context.Context) bool {
	if !l.cfg.Pristine || !l.ClusterUp {
		return true
	}
	v, err := LoadVersions(l.cfg.ScriptsDir)
	if err != nil {
		return false
	}
	c, err := l.Client()
	if err != nil {
		return false
	}
	want := "v" + v.Kube[0]
	deadline := time.Now().Add(30 * time.Second)
	for {
		at, err := clusterAt(ctx, c, want)
		if err == nil {
			return at
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "lab: cluster not answering (%v): rebuilding\n", err)
			return false
		}
		time.Sleep(time.Second)
	}
}

// clusterAt reads the cluster's kubeadm and kubelet versions.
func clusterAt(ctx context.Context, c kubernetes.Interface, want string) (bool, error) {
	cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	var cc struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return false, err
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	at := cc.KubernetesVersion == want
	for _, n := range nodes.Items {
		if v := n.Status.NodeInfo.KubeletVersion; v != "" && v != want {
			at = false
		}
	}
	if !at {
		fmt.Fprintf(os.Stderr, "lab: cluster is not at %s (an upgrade ran on it): rebuilding\n", want)
	}
	return at, nil
}

// step runs one phase of bringing the lab up, reporting how long it took
// (and recording it for the run's timing table).
func step(what string, fn func() error) error {
	return cachedStep(what, func() (bool, error) { return true, fn() })
}

// cachedStep is step for a phase that may find its result cached: fn says
// whether it built anything.
func cachedStep(what string, fn func() (built bool, err error)) error {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "lab: %s\n", what)
	built, err := fn()
	if err != nil {
		timing.Record("lab: "+what, time.Since(start), "fail")
		return err
	}
	state := "cached"
	if built {
		state = "ok"
	}
	timing.Record("lab: "+what, time.Since(start), state)
	fmt.Fprintf(os.Stderr, "lab: %s: done in %s\n", what, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// prepare builds (or finds cached) components, lab binaries, packages and
// the node image, and serves the package repository. It returns the node
// image, which nodes are started on.
func (l *Lab) prepare(ctx context.Context, v Versions) (string, error) {
	if err := step("components", func() error { return l.buildComponents(ctx, v) }); err != nil {
		return "", err
	}
	if err := cachedStep("lab binaries", func() (bool, error) { return l.buildLabBinaries(ctx, v) }); err != nil {
		return "", err
	}
	if err := cachedStep("packages", func() (bool, error) { return l.buildPackages(ctx, v) }); err != nil {
		return "", err
	}
	if err := l.startRepoServer(ctx); err != nil {
		return "", err
	}
	var image string
	err := cachedStep("node image", func() (built bool, err error) { image, built, err = l.nodeImage(ctx, v.Kube[0]); return built, err })
	return image, err
}

// upCluster makes the nodes (started on the node image) cluster nodes and
// bootstraps the control plane with kubeadm.
func (l *Lab) upCluster(ctx context.Context, v Versions) error {
	if err := step("provision nodes", func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(l.Nodes))
		for i, n := range l.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = l.provision(ctx, n, v.Kube[0], true) }()
		}
		wg.Wait()
		return errors.Join(errs...)
	}); err != nil {
		return err
	}
	if err := step("kubeadm", func() error { return l.bootstrapCluster(ctx, v.Kube[0]) }); err != nil {
		return err
	}
	if err := l.startKwok(ctx, v.Kwok); err != nil {
		return err
	}
	// kubeadm join returns before the node's Ready condition is posted: the
	// lab is up when every node is Ready, as an operator would check
	return step("nodes Ready", func() error { return l.waitNodesReady(ctx, 2*time.Minute) })
}

// waitNodesReady waits until every cluster node reports Ready.
func (l *Lab) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	want := len(l.ClusterNodes())
	return waitFor(ctx, timeout, "every node Ready", func() (bool, error) {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil // an API server still starting
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= want, nil
	})
}

// ensureServices restarts the runner-side services of a reused lab (the
// package repository and kwok) if they are not running.
func (l *Lab) ensureServices(ctx context.Context) error {
	v, err := LoadVersions(l.cfg.ScriptsDir)
	if err != nil {
		return err
	}
	if err := l.startRepoServer(ctx); err != nil {
		return err
	}
	if pidAlive(filepath.Join(l.cfg.StateDir, "kwok.pid")) {
		return nil
	}
	return l.startKwok(ctx, v.Kwok)
}

// ClusterNodes are the nodes that are members of the cluster.
func (l *Lab) ClusterNodes() []Node {
	var out []Node
	for _, n := range l.Nodes {
		if n.Role != RoleScratch {
			out = append(out, n)
		}
	}
	return out
}

// Open adopts a running lab without starting anything.
func Open(ctx context.Context, cfg Config) (*Lab, error) {
	l := &Lab{cfg: cfg.withDefaults()}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, l.healthy(ctx)
}

func (l *Lab) matches() bool {
	cp, w := 0, 0
	for _, n := range l.Nodes {
		switch n.Role {
		case RoleControlPlane:
			cp++
		case RoleWorker:
			w++
		}
	}
	return cp >= l.cfg.ControlPlane && w >= l.cfg.Workers
}

func (l *Lab) load() error {
	b, err := os.ReadFile(l.statePath())
	if err != nil {
		return err
	}
	return json.Unmarshal(b, l)
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.statePath(), b, 0o600); err != nil {
		return err
	}
	if err := l.writeInventory(); err != nil {
		return err
	}
	return l.writeKnownHosts()
}

// healthy checks that every node's sshd is alive and listening.
func (l *Lab) healthy(ctx context.Context) error {
	if len(l.Nodes) == 0 {
		return errors.New("no nodes")
	}
	for _, n := range l.Nodes {
		if !proc.Alive(n.PID) {
			return fmt.Errorf("node %s: sshd (pid %d) is not running", n.Name, n.PID)
		}
		if err := waitPort(ctx, n.IP+":22", 2*time.Second); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// Node returns a node by name.
func (l *Lab) Node(name string) (Node, bool) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Env returns shell export lines pointing tools at the lab.
func (l *Lab) Env() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export KUBEPLAY_LAB_DIR=%s\n", l.cfg.StateDir)
	fmt.Fprintf(&b, "export KUBECONFIG=%s\n", l.KubeconfigFile())
	fmt.Fprintf(&b, "export KUBEPLAY_INVENTORY=%s\n", l.InventoryFile())
	fmt.Fprintf(&b, "export KUBEPLAY_KNOWN_HOSTS=%s\n", l.KnownHostsFile())
	if v, err := LoadVersions(l.cfg.ScriptsDir); err == nil {
		// the lab's own kubectl (the machine's may be far from the lab's version)
		fmt.Fprintf(&b, "export LAB_KUBECTL=%s\n", filepath.Join(l.cacheDir(), "kube", "v"+v.Kube[0], "kubectl"))
		// the version the lab's packages offer to upgrade to
		fmt.Fprintf(&b, "export LAB_UPGRADE_VERSION=%s\n", v.Kube[len(v.Kube)-1])
	}
	fmt.Fprintf(&b, "alias lab-ssh='ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -l root'\n", l.KeyFile(), l.KnownHostsFile())
	return b.String()
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
