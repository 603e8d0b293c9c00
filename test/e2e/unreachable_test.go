package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// TestHostVanishesMidBatch (reliability case 4, test/README.md): a host of the first batch
// disappears (its namespace and link deleted) while a step runs on it. Its
// outcome is unknown, naming it, found by the keepalive; the other host of
// the batch finishes the step; the run stops and the second batch is never
// touched.
func TestHostVanishesMidBatch(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	a := l.WithNode(t, "tx5", lab.RoleScratch)
	b := l.WithNode(t, "tx6", lab.RoleScratch)
	c := l.WithNode(t, "tx7", lab.RoleScratch)
	invFile := filepath.Join(t.TempDir(), "inventory.yaml")
	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for _, n := range []lab.Node{a, b, c} {
		inv.WriteString("  " + n.Name + ": {address: " + n.IP + ", identity_file: " + l.KeyFile() + "}\n")
	}
	os.WriteFile(invFile, []byte(inv.String()), 0o600)
	loaded, err := inventory.Load(invFile)
	if err != nil {
		t.Fatal(err)
	}
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: vanish
plays:
  - hosts: all
    serial: 2
    steps:
      - name: work
        command: {argv: [sh, -c, 'touch /root/kp-started; sleep 3; touch /root/kp-worked']}
      - name: after
        command: {argv: [touch, /root/kp-after]}
`
	// tx6 vanishes once its step is running there
	go func() {
		for i := 0; i < 100; i++ {
			if out, _ := l.Exec(ctx, "tx6", "test -e /root/kp-started && echo started"); strings.TrimSpace(out) == "started" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = l.RemoveNode(context.Background(), "tx6")
	}()
	start := time.Now()
	r := harness.RunWith(ctx, t, l, loaded, "vanish.yaml", []byte(src), func(o *runner.Options) {
		o.Connector = ssh.NewConnector(ssh.Options{KnownHosts: l.KnownHostsFile(), SSHConfig: "none",
			KeepAliveInterval: 300 * time.Millisecond, KeepAliveMax: 3})
	})
	took := time.Since(start)
	if r.Err == nil {
		t.Fatal("the run succeeded without tx6")
	}
	out := harness.Outcomes(r.Rec)
	if out["work@tx5"] != events.Changed {
		t.Errorf("tx5 did not finish its step: %s", out["work@tx5"])
	}
	if out["work@tx6"] != events.Unknown {
		t.Errorf("tx6: outcome %s, want unknown", out["work@tx6"])
	}
	named := false
	for _, e := range r.Rec.Events() {
		named = named || (e.Type == events.HostEnd && e.Host == "tx6" && strings.Contains(e.Error, "tx6"))
		if e.Host == "tx7" {
			t.Fatalf("the second batch was touched: %+v", e)
		}
	}
	if !named {
		t.Error("tx6's failure does not name it")
	}
	if _, ok := out["after@tx5"]; ok {
		t.Error("the run went on to the next step after a failure over max_fail_percentage")
	}
	if got, _ := l.Exec(ctx, "tx7", "ls /root/kp-worked 2>/dev/null || echo none"); strings.TrimSpace(got) != "none" {
		t.Errorf("tx7 ran the step: %s", got)
	}
	if took > 20*time.Second {
		t.Errorf("took %s to notice the vanished host", took)
	}
	t.Logf("run ended %s after start: %v", took.Round(time.Millisecond), r.Err)
}
