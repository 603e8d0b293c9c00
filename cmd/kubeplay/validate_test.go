package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/failure"
)

// validate -i resolves every play's hosts and roles on an inventory,
// without connecting; plays whose hosts need a required param not given
// are named, not refused.
func TestValidateOnAnInventory(t *testing.T) {
	inv := filepath.Join("..", "..", "inventory", "testdata", "kubespray-sample.ini")
	out, code := run(t, "validate", "-i", inv, "kubeadm-upgrade", "kubelet-cpu-manager-policy")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{
		inv + ": ok",
		`play "first control plane" (role:control_plane[0]): node1`,
		`play "workers" (role:workers): node4, node5, node6`,
		`play "preflight (nodes)" (role:nodes): node1, node2, node3, node4, node5, node6`,
		// its hosts are '{{ params.group }}', and policy is required
		`kubelet-cpu-manager-policy: ok`,
		"the required policy not given (-e)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate -i: no %q in:\n%s", want, out)
		}
	}
	out, code = run(t, "validate", "-i", inv, "-e", "policy=static", "-e", "reserved_cpus=0", "kubelet-cpu-manager-policy")
	if code != 0 || !strings.Contains(out, "(role:workers): node4, node5, node6") {
		t.Errorf("with the params: exit %d: %s", code, out)
	}

	// an inventory without a control plane: the bundled upgrade's plays do
	// not resolve, and validate says which role and what it tried
	flat := filepath.Join(t.TempDir(), "flat.ini")
	os.WriteFile(flat, []byte("[cluster]\na\nb\n"), 0o600)
	out, code = run(t, "validate", "-i", flat, "kubeadm-cert-renew")
	if code != failure.ExitValidation || !strings.Contains(out, "role control_plane has no hosts (tried: groups control_plane, kube_control_plane") {
		t.Errorf("no control plane: exit %d: %s", code, out)
	}
	out, code = run(t, "validate", "-i", flat, "--role", "control_plane=a", "kubeadm-cert-renew")
	if code != 0 || !strings.Contains(out, "(role:control_plane): a") {
		t.Errorf("--role: exit %d: %s", code, out)
	}
}

// The inventory commands need an inventory: none is exit 2, not an empty
// listing (or, for check, every Node reported as uncovered).
func TestInventoryCommandsNeedAnInventory(t *testing.T) {
	t.Setenv("KUBEPLAY_INVENTORY", "")
	for _, args := range [][]string{{"inventory"}, {"inventory", "check"}} {
		out, code := run(t, args...)
		if code != failure.ExitValidation || !strings.Contains(out, "give the inventory with -i") {
			t.Errorf("%v: exit %d: %s", args, code, out)
		}
	}
}
