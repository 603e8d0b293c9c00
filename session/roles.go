package session

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// ParseRoles parses --role ROLE=PATTERN flags.
func ParseRoles(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		role, pattern, ok := strings.Cut(f, "=")
		role, pattern = strings.TrimSpace(role), strings.TrimSpace(pattern)
		if !ok || role == "" || pattern == "" {
			return nil, fmt.Errorf("%w: --role %q: want ROLE=PATTERN (roles: %s)", failure.ErrValidation, f, strings.Join(inventory.RoleNames(), ", "))
		}
		if _, dup := out[role]; dup {
			return nil, fmt.Errorf("%w: --role %s given twice", failure.ErrValidation, role)
		}
		out[role] = pattern
	}
	return out, nil
}

// ControlPlaneLabel marks a control-plane Node (kubeadm sets it).
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

// maxNodes bounds the Nodes read from a cluster (Kubernetes supports 5,000).
const maxNodes = 10000

// ClusterNodes reads the cluster's Nodes as the inventory compares them.
func ClusterNodes(ctx context.Context, kube kubernetes.Interface) ([]inventory.Node, error) {
	var out []inventory.Node
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := kube.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list Nodes: %w", err)
		}
		for i := range list.Items {
			out = append(out, nodeOf(&list.Items[i]))
		}
		if len(out) > maxNodes {
			return nil, fmt.Errorf("list Nodes: more than %d", maxNodes)
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return out, nil
		}
	}
}

func nodeOf(n *corev1.Node) inventory.Node {
	_, cp := n.Labels[ControlPlaneLabel]
	out := inventory.Node{Name: n.Name, ControlPlane: cp}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && out.InternalIP == "" {
			out.InternalIP = a.Address
		}
		if !slices.Contains(out.Addresses, a.Address) {
			out.Addresses = append(out.Addresses, a.Address)
		}
	}
	return out
}

// resolver resolves inventory addresses that are names.
func resolver() inventory.Resolver { return net.DefaultResolver }

// CheckInventory compares the inventory with the cluster's Nodes (hosts
// nil: every cluster host, and every Node).
func CheckInventory(ctx context.Context, inv *inventory.Inventory, nodes []inventory.Node, hosts []string) ([]inventory.Mismatch, error) {
	return inv.Check(ctx, nodes, hosts, resolver())
}

// FromCluster writes a kubeplay inventory from the cluster's Nodes: a host
// per Node with its InternalIP (else its first address) and node_name, and
// the roles as groups (control_plane, workers; nodes has both).
func FromCluster(nodes []inventory.Node) []byte {
	var b strings.Builder
	b.WriteString("# written by kubeplay inventory from-cluster; SSH settings come from\n# defaults and ~/.ssh/config\nhosts:\n")
	var cps, workers []string
	for _, n := range nodes {
		addr := n.InternalIP
		if addr == "" && len(n.Addresses) > 0 {
			addr = n.Addresses[0]
		}
		addr = cmp.Or(addr, n.Name)
		fmt.Fprintf(&b, "  %s: {address: %s, node_name: %s}\n", yamlString(n.Name), yamlString(addr), yamlString(n.Name))
		if n.ControlPlane {
			cps = append(cps, n.Name)
		} else {
			workers = append(workers, n.Name)
		}
	}
	b.WriteString("groups:\n")
	group := func(name string, hosts []string) {
		quoted := make([]string, len(hosts))
		for i, h := range hosts {
			quoted[i] = yamlString(h)
		}
		fmt.Fprintf(&b, "  %s: {hosts: [%s]}\n", name, strings.Join(quoted, ", "))
	}
	group(inventory.RoleControlPlane, cps)
	group(inventory.RoleWorkers, workers)
	fmt.Fprintf(&b, "  %s: {children: [%s, %s]}\n", inventory.RoleNodes, inventory.RoleControlPlane, inventory.RoleWorkers)
	return []byte(b.String())
}

// yamlString quotes a value for a flow mapping (Node names and addresses
// are DNS names and IPs, quoted all the same).
func yamlString(s string) string { return fmt.Sprintf("%q", s) }

// checkTargets resolves the roles, with the cluster's Nodes when there is
// a cluster, then compares the cluster hosts the run targets with their
// Nodes. A mismatch refuses the run before anything is touched. It returns
// what the run records of the check.
func checkTargets(ctx context.Context, o Options, pb *playbook.Playbook, inv *inventory.Inventory, cluster modules.Cluster, roles map[string]string, params map[string]any) (string, error) {
	var nodes []inventory.Node
	var listErr error
	if cluster.Kube != nil {
		nodes, listErr = ClusterNodes(ctx, cluster.Kube)
	}
	if err := inv.ResolveRoles(inventory.RoleSources{Flags: roles, Nodes: nodes}); err != nil {
		return "", fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	switch {
	case o.SkipInventoryCheck:
		return "skipped (--skip-inventory-check)", nil
	case cluster.Kube == nil:
		return "not made: no cluster access", nil
	case listErr != nil:
		return "", fmt.Errorf("%w: inventory check (--skip-inventory-check runs without it): %w", failure.ErrNoCluster, listErr)
	}
	plan, err := planFor(pb, inv, params, o.Limit)
	if err != nil {
		return "", err
	}
	clusterHosts := map[string]bool{}
	if r, err := inv.Role(inventory.RoleNodes); err == nil {
		for _, h := range r.Hosts {
			clusterHosts[h] = true
		}
	}
	hosts := slices.DeleteFunc(plan.Hosts(), func(h string) bool { return !clusterHosts[h] })
	mm, err := CheckInventory(ctx, inv, nodes, hosts)
	if err != nil {
		return "", fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	if len(mm) > 0 {
		lines := make([]string, len(mm))
		for i, m := range mm {
			lines[i] = m.String()
		}
		return "", fmt.Errorf("%w: the inventory disagrees with the cluster's Nodes (kubeplay inventory check shows all; --skip-inventory-check runs anyway):\n  - %s",
			failure.ErrValidation, strings.Join(lines, "\n  - "))
	}
	return fmt.Sprintf("ok (%d targeted hosts against %d Nodes)", len(hosts), len(nodes)), nil
}

// Access says where an inventory command finds the inventory, the roles
// and the cluster.
type Access struct {
	Inventory string
	Roles     []string // --role
	Kube      KubeOptions
	SSH       ssh.Options
}

// InventoryReport is what `kubeplay inventory check` prints.
type InventoryReport struct {
	Roles      []inventory.Role
	Nodes      []inventory.Node
	Mismatches []inventory.Mismatch
}

// listTimeout bounds reading the Nodes of an unreachable API server.
const listTimeout = 30 * time.Second

// readNodes reads the cluster's Nodes; no cluster access is ErrNoCluster.
func readNodes(ctx context.Context, kube KubeOptions, inv *inventory.Inventory, sshOpts ssh.Options) ([]inventory.Node, error) {
	cluster, closeCluster, err := Connect(ctx, kube, inv, ssh.NewConnector(sshOpts))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrNoCluster, err)
	}
	defer closeCluster()
	if cluster.Kube == nil {
		return nil, fmt.Errorf("%w: no kubeconfig (give --kubeconfig or --kubeconfig-from-host, set KUBECONFIG, or the inventory's kubeconfig: {from_host: ...})", failure.ErrNoCluster)
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	nodes, err := ClusterNodes(ctx, cluster.Kube)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrNoCluster, err)
	}
	return nodes, nil
}

// CheckInventoryAgainstCluster compares a whole inventory with the
// cluster's Nodes: every cluster host, and every Node.
func CheckInventoryAgainstCluster(ctx context.Context, a Access) (*InventoryReport, error) {
	inv, err := LoadInventory(a.Inventory)
	if err != nil {
		return nil, err
	}
	roles, err := ParseRoles(a.Roles)
	if err != nil {
		return nil, err
	}
	nodes, err := readNodes(ctx, a.Kube, inv, a.SSH)
	if err != nil {
		return nil, err
	}
	if err := inv.ResolveRoles(inventory.RoleSources{Flags: roles, Nodes: nodes}); err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	rep := &InventoryReport{Nodes: nodes}
	if rep.Roles, err = inv.Roles(); err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	if rep.Mismatches, err = CheckInventory(ctx, inv, nodes, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	return rep, nil
}

// InventoryFromCluster writes a kubeplay inventory from the cluster's
// Nodes (FromCluster).
func InventoryFromCluster(ctx context.Context, kube KubeOptions, sshOpts ssh.Options) ([]byte, error) {
	nodes, err := readNodes(ctx, kube, inventory.New(), sshOpts)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: the cluster has no Nodes", failure.ErrValidation)
	}
	return FromCluster(nodes), nil
}
