package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/test/lab"
)

// The inventory against the lab's Nodes: the lab's own inventory and one
// written from the cluster agree; the same inventory with kubespray's group
// names runs the bundled upgrade under --check; a wrong address for w1 is
// named by `inventory check` and refused by `run` before any change.
func TestInventoryAgainstTheLab(t *testing.T) {
	l := lab.Start(t)
	t.Setenv("KUBECONFIG", l.KubeconfigFile())
	t.Setenv("KUBEPLAY_KNOWN_HOSTS", l.KnownHostsFile())
	t.Setenv("KUBEPLAY_INVENTORY", "")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b, err := os.ReadFile(l.InventoryFile())
	if err != nil {
		t.Fatal(err)
	}
	base := string(b)

	out, code := run(t, "inventory", "check", "-i", l.InventoryFile())
	if code != 0 || !strings.Contains(out, "agrees with the cluster's 5 Nodes") {
		t.Fatalf("the lab's inventory: exit %d: %s", code, out)
	}

	// a round trip: from-cluster, then check
	gen := filepath.Join(dir, "from-cluster.yaml")
	if out, code := run(t, "inventory", "from-cluster", "-o", gen); code != 0 {
		t.Fatalf("from-cluster: exit %d: %s", code, out)
	}
	genInv, err := inventory.Load(gen)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"cp1", "cp2", "cp3", "w1", "w2"} {
		h, ok := genInv.Host(n)
		want, _ := l.Node(n)
		if !ok || h.NodeName != n || h.Address != want.IP {
			t.Errorf("from-cluster: host %s: %+v, want address %s", n, h, want.IP)
		}
	}
	if out, code := run(t, "inventory", "check", "-i", gen); code != 0 {
		t.Fatalf("check of the inventory from-cluster wrote: exit %d: %s", code, out)
	}

	// kubespray's group names
	kubespray := strings.NewReplacer(
		"  control_plane:", "  kube_control_plane:",
		"  workers:", "  kube_node:",
		"  nodes:\n", "  k8s_cluster:\n",
		"children: [control_plane, workers]", "children: [kube_control_plane, kube_node]",
	).Replace(base)
	if kubespray == base || strings.Contains(kubespray, " control_plane") {
		t.Fatalf("the lab's inventory did not rename as expected:\n%s", kubespray)
	}
	ks := write("kubespray.yaml", kubespray)
	out, code = run(t, "inventory", "-i", ks)
	if code != 0 || !strings.Contains(out, "control_plane: [cp1, cp2, cp3]  # from group kube_control_plane") ||
		!strings.Contains(out, "workers: [w1, w2]  # from group kube_node (less the control plane)") {
		t.Fatalf("roles of the kubespray inventory: exit %d: %s", code, out)
	}
	v, err := lab.LoadVersions(l.ScriptsDir())
	if err != nil {
		t.Fatal(err)
	}
	out, code = run(t, "run", "kubeadm-upgrade", "-i", ks, "--check", "-e", "version="+v.Kube[1],
		"-e", "snapshot_dir="+t.TempDir(), "--state-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "INVENTORY check: ok") {
		t.Fatalf("the bundled upgrade --check on kubespray's group names: exit %d: %s", code, out)
	}
	for _, host := range []string{"cp1", "cp3", "w2"} {
		if !strings.Contains(out, host) {
			t.Errorf("the upgrade --check never mentions %s:\n%s", host, out)
		}
	}

	// a wrong address for w1
	if !strings.Contains(base, "w1: {address: 10.77.0.14") {
		t.Fatalf("the lab's inventory changed shape:\n%s", base)
	}
	wrong := write("wrong.yaml", strings.Replace(base, "w1: {address: 10.77.0.14", "w1: {address: 10.77.0.99", 1))
	out, code = run(t, "inventory", "check", "-i", wrong)
	if code != failure.ExitValidation || !strings.Contains(out, "w1") || !strings.Contains(out, "address 10.77.0.99 is not one of the Node's") {
		t.Fatalf("check with a wrong address for w1: exit %d: %s", code, out)
	}
	marker := "/root/kubeplay-inventory-check-" + filepath.Base(dir)
	pb := write("touch.yaml", `apiVersion: kubeplay/v1
kind: Playbook
name: touch
plays:
  - hosts: role:nodes
    steps:
      - command: {argv: [touch, `+marker+`]}
`)
	out, code = run(t, "run", pb, "-i", wrong, "--state-dir", t.TempDir())
	if code != failure.ExitValidation || !strings.Contains(out, "host w1 (Node w1): address 10.77.0.99") {
		t.Fatalf("run on the wrong inventory: exit %d: %s", code, out)
	}
	for _, n := range []string{"cp1", "w1", "w2"} {
		if got, err := l.Exec(context.Background(), n, "test -e "+marker+" && echo touched || echo untouched"); err != nil || strings.TrimSpace(got) != "untouched" {
			t.Errorf("%s after the refused run: %q %v", n, got, err)
		}
	}
	// the skip is the operator's, and the run records it
	out, code = run(t, "run", pb, "-i", wrong, "--limit", "cp1", "--skip-inventory-check", "--state-dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "INVENTORY check: skipped (--skip-inventory-check)") {
		t.Fatalf("--skip-inventory-check: exit %d: %s", code, out)
	}
	if _, err := l.Exec(context.Background(), "cp1", "rm "+marker); err != nil {
		t.Errorf("cp1 was not touched by the run that skipped the check: %v", err)
	}

	// no cluster access
	t.Setenv("KUBECONFIG", filepath.Join(dir, "none"))
	out, code = run(t, "inventory", "check", "-i", l.InventoryFile())
	if code != failure.ExitNoCluster || !strings.Contains(out, "no cluster access") {
		t.Fatalf("check without a cluster: exit %d: %s", code, out)
	}
	out, code = run(t, "inventory", "from-cluster", "--kubeconfig", write("unreachable.conf", unreachableKubeconfig))
	if code != failure.ExitNoCluster || !strings.Contains(out, "no cluster access") {
		t.Fatalf("from-cluster with an unreachable API server: exit %d: %s", code, out)
	}
}

// a kubeconfig whose server is a closed port on loopback
const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
