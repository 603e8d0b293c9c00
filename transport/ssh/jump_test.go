package ssh_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// clientIP is the address the host's sshd saw the connection come from.
func clientIP(t *testing.T, conn transport.Conn) string {
	t.Helper()
	r, err := conn.Exec(context.Background(), transport.Cmd{Shell: `echo $SSH_CONNECTION`})
	if err != nil || r.RC != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	return strings.Fields(r.Stdout)[0]
}

func TestLabProxyJump(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	cp1, _ := l.Node("cp1")
	cp2, _ := l.Node("cp2")
	w2, _ := l.Node("w2")
	none := func(o *ssh.Options) { o.SSHConfig = "none" }

	// one jump, then a chain of two: w2 sees the last jump host as its client
	for _, c := range []struct {
		jumps []inventory.Jump
		from  string
	}{
		{nil, "10.77.0.1"},
		{[]inventory.Jump{{Address: cp1.IP}}, cp1.IP},
		{[]inventory.Jump{{Address: cp1.IP, User: "root"}, {Address: cp2.IP, Port: 22}}, cp2.IP},
	} {
		h := labHost(l, w2)
		h.Jumps = c.jumps
		conn, err := connector(l, none).Connect(ctx, h)
		if err != nil {
			t.Fatalf("via %v: %v", c.jumps, err)
		}
		if got := clientIP(t, conn); got != c.from {
			t.Fatalf("via %v: w2 saw the connection from %s, want %s", c.jumps, got, c.from)
		}
		// etcd-style tunnels and SFTP work through the chain too
		if _, err := conn.(interface {
			ReadFile(context.Context, string) ([]byte, error)
		}).ReadFile(ctx, "/etc/hostname"); err != nil {
			t.Fatalf("sftp via %v: %v", c.jumps, err)
		}
		conn.(interface{ Close() error }).Close()
	}

	// a jump host whose key is not known fails closed, naming the jump host
	known, _ := os.ReadFile(l.KnownHostsFile())
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(string(known)), "\n") {
		if !strings.HasPrefix(line, cp1.IP+" ") {
			kept = append(kept, line)
		}
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(strings.Join(kept, "\n")+"\n"), 0o600)
	h := labHost(l, w2)
	h.Jumps = []inventory.Jump{{Address: cp1.IP}}
	_, err := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none"}).Connect(ctx, h)
	if !errors.Is(err, ssh.ErrUnknownHost) || !strings.Contains(err.Error(), "jump host "+cp1.IP) {
		t.Fatalf("unknown jump host key: %v", err)
	}

	// ~/.ssh/config: aliases, HostName, User, IdentityFile and ProxyJump
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte(`Host lab-w2
  HostName `+w2.IP+`
  ProxyJump lab-bastion
  User root
  IdentityFile `+l.KeyFile()+`
Host lab-bastion
  HostName `+cp1.IP+`
  Port 22
`), 0o600)
	conn, err := connector(l, func(o *ssh.Options) { o.SSHConfig = cfg }).Connect(ctx, &inventory.Host{Name: "w2", Address: "lab-w2", Port: 22})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.(interface{ Close() error }).Close()
	if got := clientIP(t, conn); got != cp1.IP {
		t.Fatalf("ssh config route: w2 saw %s, want the bastion %s", got, cp1.IP)
	}
	// the inventory wins over the file: proxy_jump none (no jumps) is not
	// overridden, and a user it sets is used
	direct, err := connector(l, func(o *ssh.Options) { o.SSHConfig = cfg }).Connect(ctx, &inventory.Host{Name: "w2", Address: "lab-w2", Port: 22, Jumps: []inventory.Jump{}})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.(interface{ Close() error }).Close()
	if got := clientIP(t, direct); got != "10.77.0.1" {
		t.Fatalf("proxy_jump none: w2 saw %s, want the runner", got)
	}
	h = &inventory.Host{Name: "w2", Address: "lab-w2", Port: 22, User: "nobody-here", UserGiven: true}
	if _, err := connector(l, func(o *ssh.Options) { o.SSHConfig = cfg }).Connect(ctx, h); !errors.Is(err, ssh.ErrAuth) {
		t.Fatalf("the inventory's user was not used: %v", err)
	}
}
