package inventory

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Mismatch is one disagreement between the inventory and the cluster's
// Node objects.
type Mismatch struct {
	Host string // "" for a Node no host covers
	Node string // "" for a host whose Node is missing
	What string // what disagrees, in words
}

func (m Mismatch) String() string {
	switch {
	case m.Host == "":
		return fmt.Sprintf("Node %s: %s", m.Node, m.What)
	case m.Node == "":
		return fmt.Sprintf("host %s: %s", m.Host, m.What)
	}
	return fmt.Sprintf("host %s (Node %s): %s", m.Host, m.Node, m.What)
}

// Resolver looks a host name up (net.Resolver's LookupHost); an inventory
// address that is a name is compared with a Node's addresses by its IPs.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Check compares hosts (the cluster nodes of the inventory, role nodes,
// when hosts is nil) with the cluster's Nodes. It reports: a host that is
// no Node, a host address that is not among its Node's addresses, a role
// that disagrees with the Node's control-plane label, and, when every
// cluster host is checked, a Node that no host covers.
func (inv *Inventory) Check(ctx context.Context, nodes []Node, hosts []string, res Resolver) ([]Mismatch, error) {
	whole := hosts == nil
	roles, err := inv.Roles()
	if err != nil {
		return nil, err
	}
	members := map[string][]string{}
	for _, r := range roles {
		members[r.Name] = r.Hosts
	}
	if whole {
		hosts = members[RoleNodes]
	}
	var out []Mismatch
	covered := map[string]bool{}
	for _, name := range hosts {
		h, ok := inv.hosts[name]
		if !ok || h.Local {
			continue
		}
		n, ok := inv.NodeOf(name, nodes)
		if !ok {
			out = append(out, Mismatch{Host: name, What: fmt.Sprintf("no Node is named %s (node_name) or has address %s", h.NodeName, h.Address)})
			continue
		}
		covered[n.Name] = true
		if n.Name != h.NodeName {
			out = append(out, Mismatch{Host: name, Node: n.Name, What: fmt.Sprintf("node_name is %s, but the Node with its address is %s", h.NodeName, n.Name)})
		}
		if ok, err := addressOf(ctx, h.Address, n.Addresses, res); err != nil {
			out = append(out, Mismatch{Host: name, Node: n.Name, What: fmt.Sprintf("address %s: %v", h.Address, err)})
		} else if !ok {
			out = append(out, Mismatch{Host: name, Node: n.Name, What: fmt.Sprintf("address %s is not one of the Node's (%s)", h.Address, strings.Join(n.Addresses, ", "))})
		}
		inCP := slices.Contains(members[RoleControlPlane], name)
		switch {
		case inCP && !n.ControlPlane:
			out = append(out, Mismatch{Host: name, Node: n.Name, What: "in role control_plane, but the Node has no node-role.kubernetes.io/control-plane label"})
		case !inCP && n.ControlPlane && slices.Contains(members[RoleWorkers], name):
			out = append(out, Mismatch{Host: name, Node: n.Name, What: "in role workers, but the Node is labelled node-role.kubernetes.io/control-plane"})
		case !inCP && n.ControlPlane:
			out = append(out, Mismatch{Host: name, Node: n.Name, What: "the Node is labelled node-role.kubernetes.io/control-plane, but the host is not in role control_plane"})
		}
	}
	if whole {
		for _, n := range nodes {
			if !covered[n.Name] {
				out = append(out, Mismatch{Node: n.Name, What: "no inventory host covers it (by node_name or address)"})
			}
		}
	}
	return out, nil
}

// lookupTimeout bounds resolving one inventory address.
const lookupTimeout = 5 * time.Second

// addressOf reports whether addr is one of a Node's addresses: literally,
// or, for a name, by one of the IPs it resolves to.
func addressOf(ctx context.Context, addr string, nodeAddrs []string, res Resolver) (bool, error) {
	if slices.Contains(nodeAddrs, addr) {
		return true, nil
	}
	if net.ParseIP(addr) != nil || res == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ips, err := res.LookupHost(ctx, addr)
	if err != nil {
		return false, fmt.Errorf("resolve: %w", err)
	}
	for _, ip := range ips {
		if slices.Contains(nodeAddrs, ip) {
			return true, nil
		}
	}
	return false, nil
}
