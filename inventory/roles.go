package inventory

import (
	"fmt"
	"slices"
	"strings"
)

// The roles bundled playbooks address instead of group names. In a host
// pattern a role is written "role:NAME" (role:control_plane[0],
// role:nodes:!w1).
const (
	RoleControlPlane = "control_plane"
	RoleWorkers      = "workers"
	RoleEtcd         = "etcd"
	RoleNodes        = "nodes" // every cluster node
)

// RoleNames lists the roles in the order they resolve (workers, etcd and
// nodes may derive from the control plane).
func RoleNames() []string {
	return []string{RoleControlPlane, RoleWorkers, RoleEtcd, RoleNodes}
}

// rolePrefix starts a role term of a host pattern.
const rolePrefix = "role:"

// knownGroups are the group names kubeplay's own, kubespray's and older
// Ansible kubeadm inventories give each role, tried in this order.
func knownGroups(role string) []string {
	switch role {
	case RoleControlPlane:
		return []string{"control_plane", "kube_control_plane", "kube-master", "kube_master", "masters", "master"}
	case RoleWorkers:
		return []string{"workers", "kube_node", "kube-node", "worker", "node"}
	case RoleEtcd:
		return []string{"etcd"}
	case RoleNodes:
		return []string{"nodes", "k8s_cluster", "k8s-cluster"}
	}
	return nil
}

// Node is what the cluster says about one Node object, for roles and for
// the inventory check.
type Node struct {
	Name         string
	Addresses    []string // every status address (InternalIP, ExternalIP, Hostname)
	InternalIP   string
	ControlPlane bool // labelled node-role.kubernetes.io/control-plane
}

// RoleSources are where roles come from beyond the inventory's own roles
// mapping and groups.
type RoleSources struct {
	// Flags are --role ROLE=PATTERN; they win over everything else.
	Flags map[string]string
	// Nodes are the cluster's Node objects; nil when the cluster was not
	// consulted (plan and validate without a cluster).
	Nodes []Node
}

// Role is one resolved role.
type Role struct {
	Name  string
	Hosts []string // inventory order
	From  string   // where the members came from ("" when none)
	Tried []string // the places tried, in order, when none gave members
}

// ResolveRoles resolves every role from, in order: --role flags, the
// inventory's roles mapping, the well-known group names, and the cluster's
// Nodes. Errors: a role name that is not one, a pattern naming a missing
// group (the error names the role and the group), and a host given both
// control_plane and workers by explicit mappings.
func (inv *Inventory) ResolveRoles(src RoleSources) error {
	for r := range src.Flags {
		if !slices.Contains(RoleNames(), r) {
			return fmt.Errorf("--role %s: no such role (roles: %s)", r, strings.Join(RoleNames(), ", "))
		}
	}
	roles := map[string]Role{}
	explicit := map[string]bool{}
	for _, name := range RoleNames() {
		r, isExplicit, err := inv.resolveRole(name, src, roles)
		if err != nil {
			return err
		}
		roles[name], explicit[name] = r, isExplicit
	}
	cp, w := roles[RoleControlPlane], roles[RoleWorkers]
	if explicit[RoleControlPlane] && explicit[RoleWorkers] {
		for _, h := range w.Hosts {
			if slices.Contains(cp.Hosts, h) {
				return fmt.Errorf("host %s is in role control_plane (%s) and in role workers (%s), which exclude each other", h, cp.From, w.From)
			}
		}
	}
	inv.roles = roles
	return nil
}

// resolveRole resolves one role; the roles resolved before it (by
// RoleNames' order) are in done. explicit says the members came from a
// --role flag or the roles mapping.
func (inv *Inventory) resolveRole(name string, src RoleSources, done map[string]Role) (r Role, explicit bool, err error) {
	r.Name = name
	try := func(from string, hosts []string) bool {
		if len(hosts) == 0 {
			r.Tried = append(r.Tried, from)
			return false
		}
		r.Hosts, r.From, r.Tried = hosts, from, nil
		return true
	}
	pattern := func(from, p string) (bool, error) {
		if strings.Contains(p, rolePrefix) {
			return false, fmt.Errorf("role %s: %s %q: a role's pattern cannot name a role", name, from, p)
		}
		hosts, err := inv.Match(p)
		if err != nil {
			return false, fmt.Errorf("role %s: %s: %w", name, from, err)
		}
		return try(fmt.Sprintf("%s %q", from, p), hosts), nil
	}
	if p, ok := src.Flags[name]; ok {
		if ok, err := pattern("--role", p); ok || err != nil {
			return r, true, err
		}
	}
	if p, ok := inv.RoleMap[name]; ok {
		if ok, err := pattern("the inventory's roles", p); ok || err != nil {
			return r, true, err
		}
	}
	cp := done[RoleControlPlane].Hosts
	notCP := func(hs []string) []string {
		return slices.DeleteFunc(slices.Clone(hs), func(h string) bool { return slices.Contains(cp, h) })
	}
	for _, g := range knownGroups(name) {
		if _, ok := inv.groups[g]; !ok {
			continue
		}
		hosts, from := inv.GroupHosts(g), "group "+g
		if name == RoleWorkers {
			// kubespray puts schedulable control planes in kube_node too
			hosts, from = notCP(hosts), from+" (less the control plane)"
		}
		if len(hosts) > 0 {
			r.Hosts, r.From, r.Tried = hosts, from, nil
			return r, false, nil
		}
	}
	r.Tried = append(r.Tried, "groups "+strings.Join(knownGroups(name), ", "))
	switch name {
	case RoleEtcd:
		// kubeadm's default: stacked etcd, one member per control plane
		if try("the control plane (kubeadm's stacked etcd)", cp) {
			return r, false, nil
		}
	case RoleNodes:
		if try("control_plane and workers", append(slices.Clone(cp), done[RoleWorkers].Hosts...)) {
			return r, false, nil
		}
	}
	if src.Nodes == nil {
		r.Tried = append(r.Tried, "the cluster's Nodes (not consulted)")
		return r, false, nil
	}
	var hosts []string
	for _, h := range inv.order {
		n, ok := inv.NodeOf(h, src.Nodes)
		if !ok {
			continue
		}
		if name == RoleNodes || (name == RoleControlPlane) == n.ControlPlane {
			hosts = append(hosts, h)
		}
	}
	try("the cluster's Nodes", hosts)
	return r, false, nil
}

// NodeOf finds a host's Node: by its node_name, else by its address among
// the Nodes' addresses.
func (inv *Inventory) NodeOf(host string, nodes []Node) (Node, bool) {
	h, ok := inv.hosts[host]
	if !ok {
		return Node{}, false
	}
	for _, n := range nodes {
		if n.Name == h.NodeName {
			return n, true
		}
	}
	for _, n := range nodes {
		if slices.Contains(n.Addresses, h.Address) {
			return n, true
		}
	}
	return Node{}, false
}

// Role returns a resolved role. Before ResolveRoles, roles resolve from the
// inventory alone. A role without members is an error that says what was
// tried.
func (inv *Inventory) Role(name string) (Role, error) {
	if !slices.Contains(RoleNames(), name) {
		return Role{}, fmt.Errorf("no such role %q (roles: %s)", name, strings.Join(RoleNames(), ", "))
	}
	if inv.roles == nil {
		if err := inv.ResolveRoles(RoleSources{}); err != nil {
			return Role{}, err
		}
	}
	r := inv.roles[name]
	if len(r.Hosts) == 0 {
		return r, fmt.Errorf("role %s has no hosts (tried: %s)", name, strings.Join(r.Tried, "; "))
	}
	return r, nil
}

// Roles lists every resolved role, members or not, in RoleNames' order.
func (inv *Inventory) Roles() ([]Role, error) {
	if inv.roles == nil {
		if err := inv.ResolveRoles(RoleSources{}); err != nil {
			return nil, err
		}
	}
	var out []Role
	for _, n := range RoleNames() {
		out = append(out, inv.roles[n])
	}
	return out, nil
}
