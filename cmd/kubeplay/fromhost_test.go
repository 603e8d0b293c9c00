package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/test/lab"
)

// A run whose only cluster access is the admin.conf of a control-plane
// node, read over SSH: from the flag, and from the inventory with the API
// tunnelled through the node.
func TestKubeconfigFromHost(t *testing.T) {
	l := lab.Start(t)
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("KUBEPLAY_KNOWN_HOSTS", l.KnownHostsFile())
	dir := t.TempDir()
	pb := filepath.Join(dir, "nodes.yaml")
	os.WriteFile(pb, []byte(`apiVersion: kubeplay/v1
kind: Playbook
name: nodes
plays:
  - hosts: localhost
    steps:
      - cluster-info: {}
        register: c
      - assert: {that: ['len(c.data.nodes) >= 5']}
`), 0o600)
	base, err := os.ReadFile(l.InventoryFile())
	if err != nil {
		t.Fatal(err)
	}
	tunnelInv := filepath.Join(dir, "inventory.yaml")
	os.WriteFile(tunnelInv, append(base, []byte("\nkubeconfig: {from_host: 'control_plane[0]', tunnel: true}\n")...), 0o600)
	for name, args := range map[string][]string{
		"flag":      {"-i", l.InventoryFile(), "--kubeconfig-from-host", "cp1"},
		"inventory": {"-i", tunnelInv},
	} {
		out, code := run(t, append([]string{"run", pb, "--state-dir", t.TempDir(), "--no-lock"}, args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, out)
		}
	}
	// without it, the run has no cluster
	out, code := run(t, "run", pb, "--state-dir", t.TempDir(), "--no-lock", "-i", l.InventoryFile())
	if code == 0 || !strings.Contains(out, "no Kubernetes API connection") {
		t.Fatalf("no kubeconfig: exit %d: %s", code, out)
	}
}
