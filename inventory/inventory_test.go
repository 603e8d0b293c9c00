package inventory

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func mustLoad(t *testing.T, path string) *Inventory {
	t.Helper()
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestKubesprayINI(t *testing.T) {
	inv := mustLoad(t, "testdata/kubespray.ini")
	match := func(p string) []string {
		t.Helper()
		hs, err := inv.Match(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return hs
	}
	cases := map[string][]string{
		"kube_control_plane":              {"node1", "node2", "node3"},
		"k8s_cluster":                     {"node1", "node2", "node3", "node4", "node5", "node6", "node7"},
		"kube_control_plane[0]":           {"node1"},
		"kube_control_plane[1:]":          {"node2", "node3"},
		"kube_control_plane[-1]":          {"node3"},
		"kube_control_plane[0:2]":         {"node1", "node2"},
		"k8s_cluster:!etcd":               {"node4", "node5", "node6", "node7"},
		"etcd:&kube_control_plane":        {"node1", "node2", "node3"},
		"kube_node,node1":                 {"node4", "node5", "node6", "node7", "node1"},
		"node[1-3]*":                      {"node1", "node2", "node3"},
		"~node[45]":                       {"node4", "node5"},
		"all,!kube_node":                  {"node1", "node2", "node3"},
		"calico_rr":                       nil,
		"kube_control_plane,&etcd,!node2": {"node1", "node3"},
	}
	for p, want := range cases {
		if got := match(p); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v want %v", p, got, want)
		}
	}
	h, _ := inv.Host("node2")
	if h.Address != "10.0.0.12" || h.User != "ops" || h.Port != 2222 {
		t.Errorf("node2 connection: %+v", h)
	}
	h, _ = inv.Host("node3")
	if h.IdentityFile != "/keys/id" || h.Port != 22 || h.User != "root" {
		t.Errorf("node3 connection: %+v", h)
	}
	v := inv.HostVars("node4")
	if v["kube_version"] != "1.37" || v["cluster_name"] != "lab cluster" {
		t.Errorf("child group vars must override parent: %v", v)
	}
	if v := inv.HostVars("node1"); v["kube_version"] != "1.36" || v["etcd_member_name"] != "etcd1" {
		t.Errorf("node1 vars %v", v)
	}
	if h, _ := inv.Host("node6"); h.Address != "10.0.0.99" {
		t.Errorf("range host vars: %+v", h)
	}
	if _, err := inv.Match("nosuchgroup"); err == nil {
		t.Error("unknown pattern term accepted")
	}
}

func TestAnsibleYAML(t *testing.T) {
	inv := mustLoad(t, "testdata/ansible.yaml")
	got, _ := inv.Match("k8s_cluster")
	if want := []string{"cp1", "cp2", "w1", "w2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("k8s_cluster: %v", got)
	}
	if got, _ := inv.Match("all"); len(got) != 5 || got[0] != "bastion1" {
		t.Fatalf("all: %v", got)
	}
	h, _ := inv.Host("w2")
	if h.Address != "192.0.2.12" || h.Port != 2200 || h.User != "admin" {
		t.Fatalf("w2: %+v", h)
	}
	if inv.HostVars("w1")["role"] != "worker" || inv.HostVars("cp1")["role"] != "node" {
		t.Fatal("host vars must override group vars")
	}
}

func TestNativeFormat(t *testing.T) {
	inv := mustLoad(t, "testdata/native.yaml")
	cp1, _ := inv.Host("cp1")
	if cp1.Address != "10.0.0.11" || cp1.NodeName != "cp-1" || cp1.User != "root" || cp1.IdentityFile != "~/.ssh/id_ed25519" {
		t.Fatalf("cp1: %+v", cp1)
	}
	// defaults < parent group < child group < host
	if inv.HostVars("cp2")["etcd_member"] != true {
		t.Fatal("child group var should override parent")
	}
	if inv.HostVars("w1")["zone"] != "a" || inv.HostVars("w2")["zone"] != "b" {
		t.Fatal("host var should override group var")
	}
	if w2, _ := inv.Host("w2"); w2.Port != 2222 {
		t.Fatalf("w2 port %d", w2.Port)
	}
	if inv.Bastion == nil || inv.Bastion.Host != "jump.example.com" {
		t.Fatal("bastion")
	}
	if got, _ := inv.Match("control_plane[0]"); !reflect.DeepEqual(got, []string{"cp1"}) {
		t.Fatal(got)
	}
}

func TestStrictNative(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("groups:\n  a: {hostz: [x]}\nhosts:\n  x: {adress: 1.2.3.4}\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown key "hostz"`) || !strings.Contains(err.Error(), `unknown key "adress"`) {
		t.Fatalf("want both unknown keys reported: %v", err)
	}
}

func TestProxyJumpAndBastion(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/inv.yaml"
	if err := os.WriteFile(p, []byte(`bastion: {host: jump.example.com, user: ops, identity_file: /keys/jump}
hosts:
  jump.example.com: {}
  a: {address: 10.0.0.1}
  b: {address: 10.0.0.2, proxy_jump: "u1@j1:2222,j2"}
  c: {address: 10.0.0.3, proxy_jump: none, user: admin, port: 2200}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	get := func(n string) *Host { h, _ := inv.Host(n); return h }
	if j := get("a").Jumps; len(j) != 1 || j[0] != (Jump{Address: "jump.example.com", User: "ops", IdentityFile: "/keys/jump"}) {
		t.Errorf("a: the bastion is not its jump: %+v", j)
	}
	if j := get("jump.example.com").Jumps; j != nil {
		t.Errorf("the bastion jumps through itself: %+v", j)
	}
	if j := get("b").Jumps; len(j) != 2 || j[0] != (Jump{Address: "j1", Port: 2222, User: "u1"}) || j[1] != (Jump{Address: "j2"}) {
		t.Errorf("b: %+v", j)
	}
	c := get("c")
	if c.Jumps == nil || len(c.Jumps) != 0 || !c.UserGiven || !c.PortGiven || c.Port != 2200 {
		t.Errorf("c: %+v", c)
	}
	if a := get("a"); a.UserGiven || a.PortGiven || a.User != "root" || a.Port != 22 {
		t.Errorf("a: defaults %+v", a)
	}
	for _, bad := range []string{"u@:22", "h:99999", "a b"} {
		if _, err := ParseJumps(bad); err == nil {
			t.Errorf("ParseJumps(%q) accepted", bad)
		}
	}
}

func TestHostRanges(t *testing.T) {
	cases := map[string][]string{
		"node1":               {"node1"},
		"w-[01:04]":           {"w-01", "w-02", "w-03", "w-04"},
		"n[1:3].example":      {"n1.example", "n2.example", "n3.example"},
		"n[01:10:3]":          {"n01", "n04", "n07", "n10"},
		"db-[a:c]":            {"db-a", "db-b", "db-c"},
		"x[y:B]":              {"xy", "xz", "xA", "xB"},
		"r[a:b]-[1:2]":        {"ra-1", "ra-2", "rb-1", "rb-2"},
		"n[:2]":               {"n0", "n1", "n2"},
		"literal[brackets]":   {"literal[brackets]"},
		"[2001:db8::1]-proxy": nil, // not a range: error below
	}
	for in, want := range cases {
		got, err := expandRange(in)
		if want == nil {
			if err == nil {
				t.Errorf("%s: expanded to %v, want an error", in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"n[3:1]", "n[1:]", "n[1:2:0]", "n[1:2:3:4]", "n[01:100]", "n[a:3]", "n[c:a]", "n[0:99999]", "n[0:99][0:999]"} {
		if got, err := expandRange(bad); err == nil {
			t.Errorf("%s: expanded to %d hosts, want an error", bad, len(got))
		}
	}
}

func TestAnsibleYAMLHostRanges(t *testing.T) {
	inv, err := Parse("ranges.yaml", []byte(`all:
  children:
    kube_node:
      hosts:
        w-[01:03]:
          ansible_user: ops
        w-[a:b]:
`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := inv.Match("kube_node")
	if want := []string{"w-01", "w-02", "w-03", "w-a", "w-b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kube_node: %v", got)
	}
	if h, _ := inv.Host("w-02"); h.Address != "w-02" || h.User != "ops" {
		t.Errorf("w-02: address %q user %q: a range's vars belong to each of its hosts", h.Address, h.User)
	}
	if h, _ := inv.Host("w-a"); h.User != "root" {
		t.Errorf("w-a user %q", h.User)
	}
	_, err = Parse("bad.yaml", []byte("all:\n  hosts:\n    w-[04:01]:\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") {
		t.Errorf("reversed range: %v, want an error located at bad.yaml:3", err)
	}
}
