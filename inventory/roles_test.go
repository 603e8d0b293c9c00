package inventory

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, name, src string) *Inventory {
	t.Helper()
	inv, err := Parse(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// roleHosts resolves role:NAME through a host pattern, as a play does.
func roleHosts(t *testing.T, inv *Inventory, pattern string) []string {
	t.Helper()
	hs, err := inv.Match(pattern)
	if err != nil {
		t.Fatalf("%s: %v", pattern, err)
	}
	return hs
}

func TestRolesFromWellKnownGroups(t *testing.T) {
	cases := []struct {
		name, src string
		want      map[string][]string
		from      map[string]string
	}{{
		name: "kubespray.ini",
		src:  mustRead(t, "testdata/kubespray.ini"),
		want: map[string][]string{
			"role:control_plane": {"node1", "node2", "node3"},
			"role:workers":       {"node4", "node5", "node6", "node7"},
			"role:etcd":          {"node1", "node2", "node3"},
			"role:nodes":         {"node1", "node2", "node3", "node4", "node5", "node6", "node7"},
			// patterns mix roles with everything else
			"role:control_plane[0]":          {"node1"},
			"role:nodes:!role:control_plane": {"node4", "node5", "node6", "node7"},
			"role:workers,&kube_node,!node5": {"node4", "node6", "node7"},
		},
		from: map[string]string{"control_plane": "group kube_control_plane", "nodes": "group k8s_cluster"},
	}, {
		// kubespray with schedulable control planes: they are in kube_node too
		name: "schedulable.ini",
		src:  "[kube_control_plane]\ncp1\n[kube_node]\ncp1\nw1\n[etcd:children]\nkube_control_plane\n",
		want: map[string][]string{
			"role:control_plane": {"cp1"},
			"role:workers":       {"w1"},
			"role:etcd":          {"cp1"},
			"role:nodes":         {"cp1", "w1"},
		},
		from: map[string]string{"workers": "group kube_node (less the control plane)", "nodes": "control_plane and workers"},
	}, {
		name: "old.ini",
		src:  "[kube-master]\nm1\nm2\n[kube-node]\nn1\n",
		want: map[string][]string{
			"role:control_plane": {"m1", "m2"},
			"role:workers":       {"n1"},
			"role:etcd":          {"m1", "m2"},
		},
		from: map[string]string{"etcd": "the control plane (kubeadm's stacked etcd)"},
	}, {
		name: "masters.yaml",
		src:  "all:\n  children:\n    masters:\n      hosts: {a: {}}\n    worker:\n      hosts: {b: {}, c: {}}\n",
		want: map[string][]string{"role:control_plane": {"a"}, "role:workers": {"b", "c"}, "role:nodes": {"a", "b", "c"}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv := parse(t, c.name, c.src)
			for p, want := range c.want {
				if got := roleHosts(t, inv, p); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %v want %v", p, got, want)
				}
			}
			for role, from := range c.from {
				if r, _ := inv.Role(role); r.From != from {
					t.Errorf("role %s from %q, want %q", role, r.From, from)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRolesMappingAndFlags(t *testing.T) {
	src := `hosts: {a: {}, b: {}, c: {}, d: {}}
groups:
  cps: {hosts: [a, b]}
  kube_node: {hosts: [a, b, c, d]}
roles:
  control_plane: cps
  workers: kube_node:!cps
`
	inv := parse(t, "mapped.yaml", src)
	if got := roleHosts(t, inv, "role:workers"); !reflect.DeepEqual(got, []string{"c", "d"}) {
		t.Errorf("workers from the mapping: %v", got)
	}
	if r, _ := inv.Role("control_plane"); r.From != `the inventory's roles "cps"` {
		t.Errorf("control_plane from %q", r.From)
	}
	// --role wins over the mapping
	if err := inv.ResolveRoles(RoleSources{Flags: map[string]string{"control_plane": "a"}}); err != nil {
		t.Fatal(err)
	}
	if r, _ := inv.Role("control_plane"); !reflect.DeepEqual(r.Hosts, []string{"a"}) || r.From != `--role "a"` {
		t.Errorf("control_plane with --role: %+v", r)
	}
	// b is now in neither control_plane (a) nor workers (c, d): nodes is both
	if got := roleHosts(t, inv, "role:nodes"); !reflect.DeepEqual(got, []string{"a", "c", "d"}) {
		t.Errorf("nodes: %v", got)
	}

	bad := map[string]struct{ src, flag, want string }{
		"a role mapped to a missing group names both": {
			src: "hosts: {a: {}}\nroles: {control_plane: masters}\n", want: `role control_plane: the inventory's roles: host pattern "masters": no such host or group`},
		"a --role to a missing group": {
			src: "hosts: {a: {}}\n", flag: "workers=kube_node", want: `role workers: --role: host pattern "kube_node": no such host or group`},
		"explicit roles that overlap": {
			src: "hosts: {a: {}, b: {}}\nroles: {control_plane: a, workers: 'a,b'}\n", want: "host a is in role control_plane"},
		"an unknown role on the command line": {
			src: "hosts: {a: {}}\n", flag: "master=a", want: "--role master: no such role"},
		"a role that names a role": {
			src: "hosts: {a: {}}\nroles: {workers: 'role:nodes'}\n", want: "cannot name a role"},
	}
	for name, c := range bad {
		inv := parse(t, "bad.yaml", c.src)
		var src RoleSources
		if c.flag != "" {
			k, v, _ := strings.Cut(c.flag, "=")
			src.Flags = map[string]string{k: v}
		}
		err := inv.ResolveRoles(src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
	if _, err := Parse("bad.yaml", []byte("hosts: {a: {}}\nroles: {masters: a}\n")); err == nil || !strings.Contains(err.Error(), `"masters" is not a role`) {
		t.Errorf("unknown role in the mapping: %v", err)
	}
}

func TestRolesFromTheCluster(t *testing.T) {
	// no groups at all: the cluster's Nodes say who is what
	inv := parse(t, "flat.yaml", `hosts:
  k1: {address: 10.0.0.1}
  k2: {address: 10.0.0.2, node_name: worker-a}
  k3: {address: 10.0.0.3}
  bastion: {address: 10.0.0.9}
`)
	_, err := inv.Match("role:control_plane")
	if err == nil || !strings.Contains(err.Error(), "role control_plane has no hosts (tried: groups control_plane, kube_control_plane") ||
		!strings.Contains(err.Error(), "the cluster's Nodes (not consulted)") {
		t.Fatalf("a role with no source: %v", err)
	}
	nodes := []Node{
		{Name: "k1", Addresses: []string{"10.0.0.1"}, ControlPlane: true},
		{Name: "worker-a", Addresses: []string{"10.0.0.2"}},
		{Name: "ip-10-0-0-3", Addresses: []string{"10.0.0.3", "ip-10-0-0-3"}},
	}
	if err := inv.ResolveRoles(RoleSources{Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"role:control_plane": {"k1"},
		"role:workers":       {"k2", "k3"}, // by node_name, then by address
		"role:etcd":          {"k1"},
		"role:nodes":         {"k1", "k2", "k3"},
	}
	for p, w := range want {
		if got := roleHosts(t, inv, p); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: got %v want %v", p, got, w)
		}
	}
	if r, _ := inv.Role("workers"); r.From != "the cluster's Nodes" {
		t.Errorf("workers from %q", r.From)
	}
}
