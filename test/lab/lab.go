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
	"time"
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
	ScriptsDir   string // test/lab/scripts; default found from the source tree
	ControlPlane int    // default 3
	Workers      int    // default 2
}

// Node is one lab node.
type Node struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
	Role string `json:"role"` // control-plane or worker
	PID  int    `json:"pid"`  // the node's sshd (holder of its mount namespace)
}

// Lab is a running lab.
type Lab struct {
	cfg   Config
	Nodes []Node `json:"nodes"`
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
func (l *Lab) KeyFile() string        { return filepath.Join(l.cfg.StateDir, "ssh", "id_ed25519") }
func (l *Lab) KnownHostsFile() string { return filepath.Join(l.cfg.StateDir, "ssh", "known_hosts") }
func (l *Lab) InventoryFile() string  { return filepath.Join(l.cfg.StateDir, "inventory.yaml") }
func (l *Lab) KubeconfigFile() string { return filepath.Join(l.cfg.StateDir, "kubeconfig") }
func (l *Lab) statePath() string      { return filepath.Join(l.cfg.StateDir, "lab.json") }
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
	if err := l.load(); err == nil && l.healthy(ctx) == nil && l.matches() {
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
	if err := l.runnerKey(ctx); err != nil {
		return nil, err
	}
	if err := bridgeUp(ctx); err != nil {
		return nil, err
	}
	for i := 1; i <= cfg.ControlPlane; i++ {
		if _, err := l.addNode(ctx, fmt.Sprintf("cp%d", i), "control-plane"); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= cfg.Workers; i++ {
		if _, err := l.addNode(ctx, fmt.Sprintf("w%d", i), "worker"); err != nil {
			return nil, err
		}
	}
	return l, l.save()
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
		if n.Role == "control-plane" {
			cp++
		} else {
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
		if !alive(n.PID) {
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
