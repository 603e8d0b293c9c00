package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// labState fingerprints what a playbook could change: every node's
// /etc/kubernetes, apt state and kubelet config, the packages, and the
// Nodes' schedulability.
func labState(t *testing.T, l *lab.Lab) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, n := range l.ClusterNodes() {
		out, err := l.Exec(ctx, n.Name, `find /etc/kubernetes /etc/apt /var/lib/kubelet/config.yaml -maxdepth 3 -type f 2>/dev/null | sort | xargs sha256sum | sha256sum; dpkg-query -W kubeadm kubelet kubectl; apt-mark showhold; ls /root/kubeplay-maintained 2>/dev/null || true`)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(n.Name + "\n" + out)
	}
	nodes, err := kube(t, l).CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable {
			b.WriteString(n.Name + " cordoned\n")
		}
	}
	return b.String()
}

// Every bundled playbook's dry run changes nothing: on the nodes, in the
// API, or on the runner.
func TestBundledDryRunsChangeNothing(t *testing.T) {
	l := lab.Start(t)
	v, _ := lab.LoadVersions(l.ScriptsDir())
	to := v.Kube[1]
	snapDir := t.TempDir()
	// a snapshot for the restore's dry run, kept out of snapDir
	backups := t.TempDir()
	if r := runPlaybook(t, l, bundled(t, "etcd-backup"), func(o *runner.Options) { o.Params = map[string]any{"dir": backups} }); r.err != nil {
		t.Fatal(r.err)
	}
	snaps, _ := filepath.Glob(filepath.Join(backups, "*.db"))
	if len(snaps) != 1 {
		t.Fatalf("backups: %v", snaps)
	}
	// a StorageClass for default-storageclass to name
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-dry-run"}, Provisioner: "kubernetes.io/no-provisioner"}
	if _, err := kube(t, l).StorageV1().StorageClasses().Create(context.Background(), sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube(t, l).StorageV1().StorageClasses().Delete(context.Background(), sc.Name, metav1.DeleteOptions{})
	})
	params := map[string]map[string]any{
		"kubeadm-upgrade":            {"version": to, "snapshot_dir": snapDir},
		"kubeadm-cert-renew":         {"kubeconfig_out": filepath.Join(snapDir, "admin.conf")},
		"etcd-backup":                {"dir": snapDir},
		"change-package-repo":        {"minor": to[:strings.LastIndex(to, ".")]},
		"node-maintenance":           {"command": "touch /root/kubeplay-maintained", "reboot": true},
		"version-skew":               {"current": v.Kube[0], "target": to},
		"audit-runtime-endpoint":     {"expect": "unix:///run/containerd/containerd.sock"},
		"etcd-replace-member":        {"member": "cp3", "new_host": "w1", "dir": snapDir},
		"etcd-restore":               {"snapshot": snaps[0], "confirm": true},
		"ns-guardrails":              {"namespace": "e2e-dry-run", "quota": map[string]any{"pods": "1"}},
		"kubeadm-reconfigure":        {"component": "kube-apiserver", "extra_args": map[string]any{"audit-log-maxage": "7"}},
		"kubelet-serving-certs":      {},
		"kubelet-cpu-manager-policy": {"policy": "static", "reserved_cpus": "0"},
		"encryption-at-rest":         {"action": "enable"},
		"kubelet-topology-manager":   {"policy": "best-effort"},
		"cgroup-driver-systemd":      {},
		"default-storageclass":       {"name": "e2e-dry-run"},
		"pv-reclaim-policy":          {"all": true},
		"container-runtime-migrate":  {"to": "containerd"},
		"kubelet-node-allocatable":   {"kube_reserved": map[string]any{"cpu": "500m", "memory": "1Gi"}},
		"kubelet-memory-manager": {"policy": "Static", "kube_reserved": map[string]any{"memory": "512Mi"}, "system_reserved": map[string]any{"memory": "512Mi"},
			"reserved_memory": []any{map[string]any{"numaNode": 0, "limits": map[string]any{"memory": "1124Mi"}}}},
	}
	before := labState(t, l)
	for _, name := range playbooks.Names() {
		p, ok := params[name]
		if !ok {
			t.Errorf("bundled playbook %s has no dry-run case here", name)
			continue
		}
		src, err := playbooks.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		r := runPlaybook(t, l, string(src), func(o *runner.Options) { apiClients(t, l)(o); o.Check, o.Params = true, p })
		if r.err != nil {
			t.Errorf("%s --check: %v", name, r.err)
		}
		if after := labState(t, l); after != before {
			t.Fatalf("%s --check changed the lab:\nbefore:\n%s\nafter:\n%s", name, before, after)
		}
		if left, _ := os.ReadDir(snapDir); len(left) != 0 {
			t.Fatalf("%s --check wrote on the runner: %v", name, left)
		}
		if _, err := kube(t, l).CoreV1().Namespaces().Get(context.Background(), "e2e-dry-run", metav1.GetOptions{}); err == nil {
			t.Fatalf("%s --check created a namespace", name)
		}
	}
}
