package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/etcd"
)

// TestBundledEtcdRestore takes a backup, changes the cluster, and restores
// the backup on the lab's three control planes: the change is gone, what
// was there at the backup is back, etcd has a new cluster ID with every
// member healthy, and the cluster works again (nodes Ready, objects
// writable). Without confirm=true nothing is touched.
func TestBundledEtcdRestore(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	k, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			l.MarkDirty()
		}
	})
	cms := k.CoreV1().ConfigMaps("default")
	cms.Delete(ctx, "restore-probe", metav1.DeleteOptions{})
	cms.Delete(ctx, "restore-after", metav1.DeleteOptions{})
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "restore-probe"}, Data: map[string]string{"v": "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const key = "e2e restore passphrase"
	if r := runPlaybook(t, l, bundled(t, "etcd-backup"), func(o *runner.Options) { o.Params = map[string]any{"dir": dir, "encryption_key": key} }); r.err != nil {
		t.Fatal(r.err)
	} else if ws := r.recap.Warnings(); len(ws) != 0 {
		t.Fatalf("an encrypted snapshot warned: %+v", ws)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "etcd-backup-*.db*"))
	if len(snaps) != 3 || !strings.HasSuffix(snaps[0], ".db.age") {
		t.Fatalf("an encrypted snapshot, its sidecar and checksum, no plaintext: %v", snaps)
	}
	snaps = snaps[:1]
	cli := etcdClient(t, l, "cp1", etcd.DefaultEndpoint)
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clusterBefore := ml.Header.ClusterId

	// the cluster moves on after the backup
	cm, _ := cms.Get(ctx, "restore-probe", metav1.GetOptions{})
	cm.Data["v"] = "after"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "restore-after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// without confirm: refused as invalid; with confirm=false: refused by
	// the step; either way before anything is touched
	r := runPlaybook(t, l, bundled(t, "etcd-restore"), func(o *runner.Options) { o.Params = map[string]any{"snapshot": snaps[0], "encryption_key": key} })
	if r.err == nil || !strings.Contains(r.err.Error(), "confirm") || failure.ExitCode(r.err) != failure.ExitValidation {
		t.Fatalf("want a validation refusal naming confirm: %v (exit %d)", r.err, failure.ExitCode(r.err))
	}
	r = runPlaybook(t, l, bundled(t, "etcd-restore"), func(o *runner.Options) {
		o.Params = map[string]any{"snapshot": snaps[0], "encryption_key": key, "confirm": false}
	})
	if r.err == nil || !strings.Contains(r.err.Error(), "confirm: true is required") {
		t.Fatalf("want the step to refuse confirm=false: %v", r.err)
	}
	if got, err := cms.Get(ctx, "restore-probe", metav1.GetOptions{}); err != nil || got.Data["v"] != "after" {
		t.Fatalf("the refused run changed the cluster: %v %v", got, err)
	}

	// a wrong key is refused before anything stops
	r = runPlaybook(t, l, bundled(t, "etcd-restore"), func(o *runner.Options) {
		o.Params = map[string]any{"snapshot": snaps[0], "confirm": true, "encryption_key": "wrong"}
	})
	if r.err == nil || !strings.Contains(r.err.Error(), "does not open") {
		t.Fatalf("want a refusal for the wrong key: %v", r.err)
	}
	if got, err := cms.Get(ctx, "restore-probe", metav1.GetOptions{}); err != nil || got.Data["v"] != "after" {
		t.Fatalf("the refused run changed the cluster: %v %v", got, err)
	}

	start := time.Now()
	r = runPlaybook(t, l, bundled(t, "etcd-restore"), func(o *runner.Options) {
		o.Params = map[string]any{"snapshot": snaps[0], "confirm": true, "timeout": "3m", "encryption_key": key}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("restore took %s", time.Since(start).Round(time.Second))
	restored = true

	// the backup's state is back, the later change gone
	waitFor(t, time.Minute, "the API to serve the restored state", func() (bool, string) {
		got, err := cms.Get(ctx, "restore-probe", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.Data["v"] == "before", got.Data["v"]
	})
	if _, err := cms.Get(ctx, "restore-after", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("an object created after the backup must be gone: %v", err)
	}
	cli = etcdClient(t, l, "cp1", etcd.DefaultEndpoint)
	ml, err = cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ml.Header.ClusterId == clusterBefore || len(ml.Members) != 3 {
		t.Fatalf("restored cluster: id %x (before %x), %d members", ml.Header.ClusterId, clusterBefore, len(ml.Members))
	}
	for _, n := range []string{"cp1", "cp2", "cp3"} {
		if out, _ := l.Exec(ctx, n, "ls -d /var/lib/etcd.kubeplay-* | wc -l; ls /etc/kubernetes/kubeplay-restore 2>/dev/null | wc -l"); out != "1\n0\n" {
			t.Fatalf("%s: the old data dir is kept and no manifest is left parked: %q", n, out)
		}
		l.Exec(ctx, n, "rm -rf /var/lib/etcd.kubeplay-*")
	}
	// the cluster works: writes go through and every node is Ready again
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "restore-after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cms.Delete(ctx, "restore-after", metav1.DeleteOptions{})
	cms.Delete(ctx, "restore-probe", metav1.DeleteOptions{})
	waitFor(t, 2*time.Minute, "every node Ready", func() (bool, string) {
		nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes.Items {
			ready := false
			for _, c := range n.Status.Conditions {
				ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && c.LastHeartbeatTime.After(start)
			}
			if !ready {
				return false, n.Name + " not Ready since the restore"
			}
		}
		return true, ""
	})
}
