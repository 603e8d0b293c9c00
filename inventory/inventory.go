// Package inventory models the hosts kubeplay targets: hosts, groups with
// children and variables, host patterns (--limit), and loaders for
// kubeplay's own YAML format and Ansible's INI and YAML inventories.
package inventory

import (
	"fmt"
	"maps"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Host is one machine.
type Host struct {
	Name         string
	Address      string // defaults to Name
	Port         int
	User         string
	IdentityFile string
	Become       bool
	// UserGiven and PortGiven say whether the inventory set them (else an
	// ~/.ssh/config entry may).
	UserGiven, PortGiven bool
	// Jumps are the SSH servers to go through, first to last (proxy_jump,
	// else the inventory's bastion). Nil: as ~/.ssh/config says; empty:
	// connect directly (proxy_jump: none).
	Jumps    []Jump
	NodeName string // Kubernetes Node name; defaults to Name
	// Local hosts are the runner machine itself (the implicit localhost, or
	// connection: local); they need no SSH.
	Local  bool
	Vars   map[string]any
	groups []string // direct groups, in order
}

// Group is a named set of hosts and child groups.
type Group struct {
	Name     string
	Hosts    []string // direct members, in order
	Children []string
	Vars     map[string]any
}

// Bastion is a jump host used to reach every host.
type Bastion struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	User         string `yaml:"user"`
	IdentityFile string `yaml:"identity_file"`
}

// Jump is one hop of a ProxyJump chain. Zero Port and empty User mean "as
// ~/.ssh/config says, else 22 and the host's user".
type Jump struct {
	Address      string
	Port         int
	User         string
	IdentityFile string
}

// ParseJumps parses an OpenSSH ProxyJump value: [user@]host[:port], comma
// separated; "none" is no jump.
func ParseJumps(s string) ([]Jump, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []Jump
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(part), "ssh://"))
		var j Jump
		if u, rest, ok := strings.Cut(part, "@"); ok {
			j.User, part = u, rest
		}
		if host, port, err := net.SplitHostPort(part); err == nil {
			p, err := strconv.Atoi(port)
			if err != nil || p <= 0 || p > 65535 {
				return nil, fmt.Errorf("proxy jump %q: bad port", part)
			}
			j.Address, j.Port = host, p
		} else {
			j.Address = strings.Trim(part, "[]")
		}
		if j.Address == "" || strings.ContainsAny(j.Address, " /") {
			return nil, fmt.Errorf("proxy jump %q: want [user@]host[:port]", part)
		}
		out = append(out, j)
	}
	return out, nil
}

// KubeconfigSource says where the cluster's kubeconfig comes from: a file
// read off the first host matching FromHost (kubeadm's admin.conf by
// default), kept in memory.
type KubeconfigSource struct {
	FromHost string `yaml:"from_host"`
	Path     string `yaml:"path"`
	// Tunnel sends API connections through the host's SSH connection even
	// when the server address is reachable from the runner.
	Tunnel bool `yaml:"tunnel"`
}

// Inventory is a loaded inventory.
type Inventory struct {
	Defaults   map[string]any // lowest-precedence variables
	Bastion    *Bastion
	Kubeconfig *KubeconfigSource
	// RoleMap is the inventory's roles mapping: a host pattern per role.
	RoleMap map[string]string
	roles   map[string]Role // resolved (ResolveRoles)
	hosts   map[string]*Host
	order   []string
	groups  map[string]*Group
	gorder  []string
}

// New returns an empty inventory with the implicit "all" group.
func New() *Inventory {
	inv := &Inventory{Defaults: map[string]any{}, hosts: map[string]*Host{}, groups: map[string]*Group{}}
	inv.group("all")
	return inv
}

func (inv *Inventory) group(name string) *Group {
	g, ok := inv.groups[name]
	if !ok {
		g = &Group{Name: name, Vars: map[string]any{}}
		inv.groups[name] = g
		inv.gorder = append(inv.gorder, name)
	}
	return g
}

// AddHost adds (or returns) a host.
func (inv *Inventory) AddHost(name string) *Host {
	h, ok := inv.hosts[name]
	if !ok {
		h = &Host{Name: name, Vars: map[string]any{}}
		inv.hosts[name] = h
		inv.order = append(inv.order, name)
	}
	return h
}

// AddToGroup makes host a direct member of group.
func (inv *Inventory) AddToGroup(group, host string) {
	g := inv.group(group)
	h := inv.AddHost(host)
	for _, x := range g.Hosts {
		if x == host {
			return
		}
	}
	g.Hosts = append(g.Hosts, host)
	h.groups = append(h.groups, group)
}

// AddChild makes child a child group of parent.
func (inv *Inventory) AddChild(parent, child string) {
	p := inv.group(parent)
	inv.group(child)
	for _, c := range p.Children {
		if c == child {
			return
		}
	}
	p.Children = append(p.Children, child)
}

// SetGroupVars merges vars into a group.
func (inv *Inventory) SetGroupVars(group string, vars map[string]any) {
	maps.Copy(inv.group(group).Vars, vars)
}

// Localhost is the implicit host for the runner machine: matched by the
// pattern "localhost" when the inventory does not define it, and never part
// of "all" (as in Ansible).
const Localhost = "localhost"

// Host returns a host by name (including the implicit localhost).
func (inv *Inventory) Host(name string) (*Host, bool) {
	h, ok := inv.hosts[name]
	if !ok && name == Localhost {
		return &Host{Name: Localhost, Address: "127.0.0.1", NodeName: Localhost, Local: true, Vars: map[string]any{}}, true
	}
	return h, ok
}

// Hosts lists every host in inventory order.
func (inv *Inventory) Hosts() []*Host {
	out := make([]*Host, 0, len(inv.order))
	for _, n := range inv.order {
		out = append(out, inv.hosts[n])
	}
	return out
}

// HostNames lists every host name in inventory order.
func (inv *Inventory) HostNames() []string { return append([]string(nil), inv.order...) }

// GroupNames lists the groups in definition order.
func (inv *Inventory) GroupNames() []string { return append([]string(nil), inv.gorder...) }

// Group returns a group.
func (inv *Inventory) Group(name string) (*Group, bool) {
	g, ok := inv.groups[name]
	return g, ok
}

// GroupHosts returns the hosts of a group and its descendants, direct
// members first, deduplicated, as Ansible orders them. "all" is every host.
func (inv *Inventory) GroupHosts(name string) []string {
	if name == "all" {
		return inv.HostNames()
	}
	var out []string
	seen := map[string]bool{}
	var walk func(string, map[string]bool)
	walk = func(g string, visiting map[string]bool) {
		grp, ok := inv.groups[g]
		if !ok || visiting[g] {
			return
		}
		visiting[g] = true
		for _, h := range grp.Hosts {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
		for _, c := range grp.Children {
			walk(c, visiting)
		}
	}
	walk(name, map[string]bool{})
	return out
}

// HostGroups returns every group a host belongs to (directly or through
// children), "all" first, then ancestors before descendants.
func (inv *Inventory) HostGroups(host string) []string {
	var out []string
	for _, g := range inv.groupsByDepth() {
		if g == "all" {
			out = append(out, g)
			continue
		}
		for _, h := range inv.GroupHosts(g) {
			if h == host {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// groupsByDepth orders groups so that parents come before children (vars of
// children override their parents', as in Ansible); ties by name.
func (inv *Inventory) groupsByDepth() []string {
	depth := map[string]int{}
	var d func(string, map[string]bool) int
	d = func(g string, visiting map[string]bool) int {
		if v, ok := depth[g]; ok {
			return v
		}
		if visiting[g] {
			return 0
		}
		visiting[g] = true
		best := 0
		if g != "all" {
			best = 1
		}
		for _, p := range inv.gorder {
			for _, c := range inv.groups[p].Children {
				if c == g {
					if x := d(p, visiting) + 1; x > best {
						best = x
					}
				}
			}
		}
		depth[g] = best
		return best
	}
	names := inv.GroupNames()
	for _, g := range names {
		d(g, map[string]bool{})
	}
	sort.SliceStable(names, func(i, j int) bool {
		if depth[names[i]] != depth[names[j]] {
			return depth[names[i]] < depth[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}

// HostVars resolves a host's variables: defaults < groups (parents before
// children) < host. Extra vars (-e) are applied by the caller on top.
func (inv *Inventory) HostVars(host string) map[string]any {
	out := map[string]any{}
	maps.Copy(out, inv.Defaults)
	for _, g := range inv.HostGroups(host) {
		maps.Copy(out, inv.groups[g].Vars)
	}
	if h, ok := inv.hosts[host]; ok {
		maps.Copy(out, h.Vars)
	}
	return out
}

// secretVarName matches variable names that hold credentials
// (ansible_become_password, registry_token, etcd_private_key, ...).
var secretVarName = regexp.MustCompile(`(?i)(pass(word)?|secret|token|private_key|api_key|credential)s?$`)

// IsSecretVar reports whether a variable's name says it holds a credential:
// its value is masked wherever kubeplay prints.
func IsSecretVar(name string) bool { return secretVarName.MatchString(name) }

// SecretValues are the string values of every host's credential variables
// (IsSecretVar), for a run's redactor.
func (inv *Inventory) SecretValues() []string {
	var out []string
	for _, h := range inv.HostNames() {
		for k, v := range inv.HostVars(h) {
			if s, ok := v.(string); ok && IsSecretVar(k) {
				out = append(out, s)
			}
		}
	}
	return out
}
