package ssh_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

func loopHost(t *testing.T, addr string) *inventory.Host {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &inventory.Host{Name: "loop", Address: host, Port: p, User: "root", UserGiven: true, PortGiven: true}
}

func TestQuoteNeverMakesAnAssignment(t *testing.T) {
	if got := ssh.Join([]string{"PATH=/x", "/usr/bin/env"}); got != "'PATH=/x' /usr/bin/env" {
		t.Fatalf("got %s", got)
	}
	out, err := execCommand("/bin/sh", "-c", ssh.Join([]string{"A=1", "true"})+" 2>&1; echo rc=$?")
	if err != nil || !strings.Contains(out, "rc=127") {
		t.Fatalf("the first word ran as an assignment: %q %v", out, err)
	}
}

// A private key that others can read is refused, as OpenSSH refuses it.
func TestKeyReadableByOthersIsRefused(t *testing.T) {
	addr, kh, key, _ := hangServer(t, noChannel)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	c := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none", IdentityFiles: []string{key}})
	_, err := c.Connect(context.Background(), loopHost(t, addr))
	if !errors.Is(err, ssh.ErrAuth) || !strings.Contains(err.Error(), "too open") || failure.IsRetryable(err) {
		t.Fatalf("want a final auth error naming the permissions, got %v", err)
	}
}

// With the agent on (the default) and no agent running, the default keys
// in ~/.ssh are used, as OpenSSH does.
func TestDefaultKeysWithoutAnAgent(t *testing.T) {
	addr, kh, key, _ := hangServer(t, noChannel)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	b, _ := os.ReadFile(key)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), b, 0o600)
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	c := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none", UseAgent: true})
	if _, err := c.Connect(context.Background(), loopHost(t, addr)); err != nil {
		t.Fatalf("the default key was not tried: %v", err)
	}
}

// The agent's connection is closed after each dial.
func TestAgentConnectionClosedAfterDial(t *testing.T) {
	addr, kh, key, _ := hangServer(t, noChannel)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring.Add(agent.AddedKey{PrivateKey: priv})
	var open, served atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			served.Add(1)
			go func() { agent.ServeAgent(keyring, c); open.Add(-1) }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	c := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none", IdentityFiles: []string{key}, UseAgent: true})
	for i := 0; i < 3; i++ {
		conn, err := c.Connect(context.Background(), loopHost(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		conn.(interface{ Close() error }).Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if served.Load() != 3 || open.Load() != 0 {
		t.Fatalf("agent connections: %d served, %d still open", served.Load(), open.Load())
	}
}

// A host whose key changed type (known_hosts records ecdsa, the host now
// offers ed25519) is a host-key failure: final, with the types named.
func TestHostKeyTypeChangeIsAHostKeyFailure(t *testing.T) {
	addr, kh, key, _ := hangServer(t, noChannel)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := gossh.NewPublicKey(&ec.PublicKey)
	host, port, _ := net.SplitHostPort(addr)
	os.WriteFile(kh, []byte("["+host+"]:"+port+" "+string(gossh.MarshalAuthorizedKey(pub))), 0o600)
	c := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none", IdentityFiles: []string{key}})
	_, err := c.Connect(context.Background(), loopHost(t, addr))
	var hk *ssh.HostKeyError
	if !errors.As(err, &hk) || !errors.Is(err, ssh.ErrHostKeyMismatch) || failure.IsRetryable(err) || !strings.Contains(err.Error(), "ecdsa") {
		t.Fatalf("want a final host key mismatch naming the recorded type, got %v", err)
	}
}
