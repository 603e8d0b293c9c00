package session

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/playbooks"
)

// bundledParams are the required params of every bundled playbook, with
// values that validate.
var bundledParams = map[string][]string{
	"kubeadm-upgrade":            {"version=1.37.2"},
	"change-package-repo":        {"minor=1.37"},
	"container-runtime-migrate":  {"to=containerd"},
	"default-storageclass":       {"name=standard"},
	"encryption-at-rest":         {"action=enable"},
	"etcd-replace-member":        {"member=node3", "new_host=node4"},
	"etcd-restore":               {"snapshot=/tmp/snap.db", "confirm=true"},
	"kubeadm-reconfigure":        {"component=kube-apiserver"},
	"kubelet-cpu-manager-policy": {"policy=static", "reserved_cpus=0"},
	"kubelet-memory-manager":     {"policy=None"},
	"kubelet-topology-manager":   {"policy=best-effort"},
	"ns-guardrails":              {"namespace=team-a"},
	"version-skew":               {"current=1.36.3", "target=1.37.2"},
}

// kubespray's own sample inventory plans every bundled playbook, each
// play on the hosts its role names.
func TestKubespraySampleInventoryPlansEveryBundledPlaybook(t *testing.T) {
	inv := filepath.Join("..", "inventory", "testdata", "kubespray-sample.ini")
	cps, workers := []string{"node1", "node2", "node3"}, []string{"node4", "node5", "node6"}
	want := map[string][]string{
		"localhost":              {"localhost"},
		"role:control_plane":     cps,
		"role:control_plane[0]":  {"node1"},
		"role:control_plane[1:]": {"node2", "node3"},
		"role:workers":           workers,
		"role:nodes":             append(append([]string(nil), cps...), workers...),
	}
	targetsNodes := 0
	for _, name := range playbooks.Names() {
		var extra []string
		for _, kv := range bundledParams[name] {
			extra = append(extra, kv)
		}
		plan, err := MakePlan(name, inv, extra, "", nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, p := range plan.Plays {
			w, ok := want[p.Pattern]
			if !ok {
				t.Errorf("%s: play %q: hosts %q: no expectation here (a bundled play must name a role)", name, p.Name, p.Pattern)
				continue
			}
			var got []string
			for _, b := range p.Batches {
				got = append(got, b...)
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s: play %q (%s): hosts %v, want %v", name, p.Name, p.Pattern, got, w)
			}
			if p.Pattern != "localhost" {
				targetsNodes++
			}
		}
	}
	if targetsNodes == 0 {
		t.Fatal("no play targets nodes")
	}
}

// --role wins; a role nothing gives is a validation error naming what was
// tried, before any connection.
func TestPlanRoles(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inv.ini")
	os.WriteFile(inv, []byte("[cluster]\na\nb\nc\n"), 0o600)
	_, err := MakePlan("kubeadm-cert-renew", inv, nil, "", nil)
	if !errors.Is(err, failure.ErrValidation) || !strings.Contains(err.Error(), "role control_plane has no hosts (tried: groups control_plane, kube_control_plane") {
		t.Fatalf("no control plane: %v", err)
	}
	plan, err := MakePlan("kubeadm-cert-renew", inv, nil, "", []string{"control_plane=cluster[0:2]"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(plan.Plays[0].Batches); got != "[[a] [b]]" {
		t.Errorf("control_plane from --role: batches %s", got)
	}
	for _, bad := range []string{"control_plane", "=a", "masters=a", "control_plane=nosuch"} {
		if _, err := MakePlan("kubeadm-cert-renew", inv, nil, "", []string{bad}); !errors.Is(err, failure.ErrValidation) {
			t.Errorf("--role %q: %v", bad, err)
		}
	}
}
