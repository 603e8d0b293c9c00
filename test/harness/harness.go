// Package harness runs playbooks against the lab for end-to-end tests: the
// lab's inventory, its known_hosts, SSH, and an event recorder.
package harness

import (
	"context"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/local"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// Result is a run's recap, error and events.
type Result struct {
	Recap *runner.Recap
	Err   error
	Rec   *events.Recorder
}

// Run loads src (a playbook named file) and runs it over the lab's nodes;
// mod adjusts the runner options first.
func Run(t *testing.T, l *lab.Lab, file string, src []byte, mod func(*runner.Options)) Result {
	t.Helper()
	return RunCtx(context.Background(), t, l, file, src, mod)
}

// RunCtx is Run under ctx (cancel it to interrupt the run, as Ctrl-C does).
func RunCtx(ctx context.Context, t *testing.T, l *lab.Lab, file string, src []byte, mod func(*runner.Options)) Result {
	t.Helper()
	inv, err := inventory.Load(l.InventoryFile())
	if err != nil {
		t.Fatal(err)
	}
	return RunWith(ctx, t, l, inv, file, src, mod)
}

// RunWith is RunCtx against another inventory of the lab's hosts.
func RunWith(ctx context.Context, t *testing.T, l *lab.Lab, inv *inventory.Inventory, file string, src []byte, mod func(*runner.Options)) Result {
	t.Helper()
	pb, err := playbook.Load(file, src, modules.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	rec := &events.Recorder{}
	opts := runner.Options{RunID: t.Name(), Sink: rec, Forks: 10, Local: local.Conn{},
		Connector: ssh.NewConnector(ssh.Options{KnownHosts: l.KnownHostsFile()})}
	if mod != nil {
		mod(&opts)
	}
	recap, err := runner.Run(ctx, pb, inv, opts)
	return Result{recap, err, rec}
}

// Outcomes maps "step@host" to the outcome of each step on each host (the
// last one, when a step name repeats).
func Outcomes(rec *events.Recorder) map[string]events.Outcome {
	out := map[string]events.Outcome{}
	for _, e := range rec.Events() {
		if e.Type == events.HostEnd {
			out[e.Step+"@"+e.Host] = e.Outcome
		}
	}
	return out
}

// Connect opens an SSH connection to a lab node as root, closed when the
// test ends.
func Connect(t *testing.T, l *lab.Lab, node string) *ssh.Conn {
	t.Helper()
	n, ok := l.Node(node)
	if !ok {
		t.Fatalf("no lab node %s", node)
	}
	conn, err := ssh.NewConnector(ssh.Options{KnownHosts: l.KnownHostsFile(), SSHConfig: "none"}).Connect(context.Background(),
		&inventory.Host{Name: node, Address: n.IP, Port: 22, User: "root", IdentityFile: l.KeyFile()})
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*ssh.Conn)
	t.Cleanup(func() { c.Close() })
	return c
}
