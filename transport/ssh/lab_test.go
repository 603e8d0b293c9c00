package ssh_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

func labHost(l *lab.Lab, n lab.Node) *inventory.Host {
	return &inventory.Host{Name: n.Name, Address: n.IP, Port: 22, User: "root", IdentityFile: l.KeyFile()}
}

func connector(l *lab.Lab, mod func(*ssh.Options)) *ssh.Connector {
	o := ssh.Options{KnownHosts: l.KnownHostsFile()}
	if mod != nil {
		mod(&o)
	}
	return ssh.NewConnector(o)
}

func TestLabExecEveryNode(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	c := connector(l, nil)
	seen := map[string]bool{}
	for _, n := range l.ClusterNodes() {
		conn, err := c.Connect(ctx, labHost(l, n))
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		r, err := conn.Exec(ctx, transport.Cmd{Argv: []string{"hostname"}})
		if err != nil || r.RC != 0 {
			t.Fatalf("%s: %+v %v", n.Name, r, err)
		}
		name := strings.TrimSpace(r.Stdout)
		if name != n.Name || seen[name] {
			t.Fatalf("hostname %q on %s", name, n.Name)
		}
		seen[name] = true
		// quoting: a hostile argument stays one inert word
		r, err = conn.Exec(ctx, transport.Cmd{Argv: []string{"printf", "%s", `a'b"c $(touch /tmp/pwned) | ; *`}})
		if err != nil || r.Stdout != `a'b"c $(touch /tmp/pwned) | ; *` {
			t.Fatalf("quoting: %q %v", r.Stdout, err)
		}
		r, _ = conn.Exec(ctx, transport.Cmd{Shell: "exit 7"})
		if r.RC != 7 {
			t.Fatalf("rc %d", r.RC)
		}
		conn.(interface{ Close() error }).Close()
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Fatal("a quoted argument was executed")
	}
}

func TestLabHostKeyMismatchAndUnknown(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	n := l.Nodes[0]
	other := l.Nodes[1]
	known, _ := os.ReadFile(l.KnownHostsFile())
	// known_hosts records another node's key for this address
	var wrong []string
	for _, line := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		f := strings.Fields(line)
		if f[0] == other.IP {
			wrong = append(wrong, n.IP+" "+f[1]+" "+f[2])
		}
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(strings.Join(wrong, "\n")+"\n"), 0o600)
	_, err := ssh.NewConnector(ssh.Options{KnownHosts: kh}).Connect(ctx, labHost(l, n))
	if !errors.Is(err, ssh.ErrHostKeyMismatch) || failure.IsRetryable(err) {
		t.Fatalf("want non-retryable mismatch, got %v", err)
	}
	if !strings.Contains(err.Error(), "SHA256:") {
		t.Fatalf("message should show the fingerprint: %v", err)
	}
	after, _ := os.ReadFile(kh)
	if string(after) != strings.Join(wrong, "\n")+"\n" {
		t.Fatal("known_hosts was modified on mismatch")
	}

	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	_, err = ssh.NewConnector(ssh.Options{KnownHosts: empty}).Connect(ctx, labHost(l, n))
	if !errors.Is(err, ssh.ErrUnknownHost) || failure.IsRetryable(err) {
		t.Fatalf("want unknown host, got %v", err)
	}
	// explicit trust on first use records the key, then verifies it
	if _, err := ssh.NewConnector(ssh.Options{KnownHosts: empty, AcceptNew: true}).Connect(ctx, labHost(l, n)); err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.NewConnector(ssh.Options{KnownHosts: empty}).Connect(ctx, labHost(l, n)); err != nil {
		t.Fatalf("recorded key not accepted: %v", err)
	}
}

func TestLabAuthRejected(t *testing.T) {
	l := lab.Start(t)
	key := filepath.Join(t.TempDir(), "stranger")
	if out, err := execCmd("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key); err != nil {
		t.Fatal(out)
	}
	h := labHost(l, l.Nodes[0])
	h.IdentityFile = key
	_, err := connector(l, nil).Connect(context.Background(), h)
	if !errors.Is(err, ssh.ErrAuth) || failure.IsRetryable(err) {
		t.Fatalf("want non-retryable auth failure, got %v", err)
	}
}

func TestLabDeadSSHDAndDroppedCommand(t *testing.T) {
	l := lab.Start(t)
	n := l.WithNode(t, "tx1", lab.RoleScratch)
	ctx := context.Background()
	c := connector(l, func(o *ssh.Options) { o.KeepAliveInterval = 200 * time.Millisecond })
	conn, err := c.Connect(ctx, labHost(l, n))
	if err != nil {
		t.Fatal(err)
	}
	// the connection drops mid-command: the outcome is unknown, not failed
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, transport.Cmd{Shell: "echo started; sleep 30"})
		done <- err
	}()
	waitRunning(t, l, n.Name, "sleep")
	for _, p := range l.NodePIDs(n.Name, "sshd") {
		syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("command did not return after its connection died")
	}
	if !errors.Is(err, failure.ErrUnknownOutcome) {
		t.Fatalf("want unknown outcome, got %v", err)
	}
	// sshd is gone: a new connection fails, retryable, naming the address
	_, err = c.Connect(ctx, labHost(l, n))
	if err == nil || !failure.IsRetryable(err) || !strings.Contains(err.Error(), n.IP) {
		t.Fatalf("want retryable dial error naming %s, got %v", n.IP, err)
	}
}

func TestLabBlackholeCaughtByKeepalive(t *testing.T) {
	l := lab.Start(t)
	n := l.WithNode(t, "tx2", lab.RoleScratch)
	ctx := context.Background()
	c := connector(l, func(o *ssh.Options) { o.KeepAliveInterval = 200 * time.Millisecond; o.KeepAliveMax = 3 })
	conn, err := c.Connect(ctx, labHost(l, n))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := conn.Exec(ctx, transport.Cmd{Shell: "sleep 60"})
		done <- err
	}()
	waitRunning(t, l, n.Name, "sleep")
	// freeze every sshd of the node: TCP stays open, nothing answers
	pids := l.NodePIDs(n.Name, "sshd")
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	defer func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}()
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("keepalive did not detect the silent peer")
	}
	if !errors.Is(err, failure.ErrUnknownOutcome) {
		t.Fatalf("want unknown outcome, got %v", err)
	}
	t.Logf("dead peer detected after %s", time.Since(start).Round(10*time.Millisecond))
}

func TestLabSecretsNeverInArgv(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	c := connector(l, nil)
	n := l.ClusterNodes()[len(l.ClusterNodes())-1]
	conn, err := c.Connect(ctx, labHost(l, n))
	if err != nil {
		t.Fatal(err)
	}
	const value = "tok-7f3a9-very-secret"
	done := make(chan transport.ExecResult, 1)
	go func() {
		r, err := conn.Exec(ctx, transport.Cmd{Shell: `sleep 3; printf '%s|' "$TOKEN"; cat`,
			Env: map[string]secret.String{"TOKEN": secret.New(value)}, Stdin: strings.NewReader(value + "-stdin")})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	watch, err := c.Connect(ctx, labHost(l, n))
	if err != nil {
		t.Fatal(err)
	}
	// read every command line on the machine until the step is seen running
	sawStep := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !sawStep; {
		ps, err := watch.Exec(ctx, transport.Cmd{Shell: `for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f; echo; done`})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(ps.Stdout, value) {
			t.Fatalf("secret visible in a remote command line:\n%s", ps.Stdout)
		}
		sawStep = strings.Contains(ps.Stdout, "sleep 3")
	}
	if !sawStep {
		t.Fatal("never saw the step running while reading command lines")
	}
	r := <-done
	if r.Stdout != value+"|"+value+"-stdin" {
		t.Fatalf("secret did not reach the command: %q", r.Stdout)
	}
	left, _ := watch.Exec(ctx, transport.Cmd{Shell: "ls -a /tmp | grep -c kubeplay-env || true"})
	if strings.TrimSpace(left.Stdout) != "0" {
		t.Fatalf("env file left behind: %s", left.Stdout)
	}
}

func execCmd(name string, args ...string) (string, error) {
	out, err := execCommand(name, args...)
	return fmt.Sprint(out), err
}

// waitRunning polls until a process named comm runs inside the node (the
// step under test has started), so faults are injected mid-command.
func waitRunning(t *testing.T, l *lab.Lab, node, comm string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if len(l.NodePIDs(node, comm)) > 0 {
			return
		}
	}
	t.Fatalf("%s never ran on %s", comm, node)
}

// Reliability case 13 (test/README.md): a host rebuilt at the same IP presents a new host
// key. kubeplay fails closed, naming the new key's fingerprint, does not
// retry, and leaves known_hosts alone; once the operator records the new
// key, it connects.
func TestLabReplacedHostReusingIP(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	old := l.WithNode(t, "tx3", lab.RoleScratch)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	before, _ := os.ReadFile(l.KnownHostsFile())
	os.WriteFile(kh, before, 0o600)
	conn, err := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none"}).Connect(ctx, labHost(l, old))
	if err != nil {
		t.Fatal(err)
	}
	conn.(interface{ Close() error }).Close()

	if err := l.RemoveNode(ctx, "tx3"); err != nil {
		t.Fatal(err)
	}
	rebuilt := l.WithNode(t, "tx4", lab.RoleScratch)
	if rebuilt.IP != old.IP {
		t.Fatalf("the lab gave the new node %s, not the freed %s", rebuilt.IP, old.IP)
	}
	_, err = ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none"}).Connect(ctx, labHost(l, rebuilt))
	var hk *ssh.HostKeyError
	if !errors.As(err, &hk) || !errors.Is(err, ssh.ErrHostKeyMismatch) || failure.IsRetryable(err) {
		t.Fatalf("want a final host key mismatch, got %v", err)
	}
	pub, _ := os.ReadFile(filepath.Join(l.NodeDir("tx4"), "ssh_host_ed25519_key.pub"))
	if k, _, _, _, perr := gossh.ParseAuthorizedKey(pub); perr != nil || hk.Fingerprint != k.Type()+" "+gossh.FingerprintSHA256(k) || !strings.Contains(err.Error(), hk.Fingerprint) {
		t.Fatalf("the error must name the new key's fingerprint: %v (%v)", err, perr)
	}
	if after, _ := os.ReadFile(kh); string(after) != string(before) {
		t.Fatal("known_hosts was changed on a mismatch")
	}
	conn, err = ssh.NewConnector(ssh.Options{KnownHosts: l.KnownHostsFile(), SSHConfig: "none"}).Connect(ctx, labHost(l, rebuilt))
	if err != nil {
		t.Fatalf("with the new key recorded: %v", err)
	}
	defer conn.(interface{ Close() error }).Close()
	if r, err := conn.Exec(ctx, transport.Cmd{Argv: []string{"hostname"}}); err != nil || strings.TrimSpace(r.Stdout) != "tx4" {
		t.Fatalf("%+v %v", r, err)
	}
}
