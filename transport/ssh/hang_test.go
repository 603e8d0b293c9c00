package ssh_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// hangServer listens on loopback. With speak false it accepts TCP and never
// says a word (a handshake that hangs); with speak true it completes the
// SSH handshake, accepts any key, and then never answers a channel open.
func hangServer(t *testing.T, speak bool) (addr string, knownHosts string, clientKey string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := gossh.NewSignerFromKey(hostPriv)
	cfg := &gossh.ServerConfig{PublicKeyCallback: func(gossh.ConnMetadata, gossh.PublicKey) (*gossh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(hostSigner)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if !speak {
				continue // silence
			}
			go func() {
				_, chans, reqs, err := gossh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go gossh.DiscardRequests(reqs)
				for range chans {
					// never accepted, never rejected
				}
			}()
		}
	}()
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	line := "[" + host + "]:" + port + " " + string(gossh.MarshalAuthorizedKey(hostSigner.PublicKey()))
	if port == "22" {
		line = host + " " + string(gossh.MarshalAuthorizedKey(hostSigner.PublicKey()))
	}
	knownHosts = filepath.Join(dir, "known_hosts")
	os.WriteFile(knownHosts, []byte(line), 0o600)
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	pemBlock, err := gossh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	clientKey = filepath.Join(dir, "id_ed25519")
	os.WriteFile(clientKey, encodePEM(pemBlock), 0o600)
	return l.Addr().String(), knownHosts, clientKey
}

// ANCHORS B8 case 3: a peer that accepts TCP but never finishes the
// handshake, and one that never answers a channel open, both fail within
// their bounds as retryable errors instead of hanging the run.
func TestHandshakeAndChannelOpenHangsAreBounded(t *testing.T) {
	ctx := context.Background()
	for _, speak := range []bool{false, true} {
		addr, kh, key := hangServer(t, speak)
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		c := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none", IdentityFiles: []string{key},
			HandshakeTimeout: 500 * time.Millisecond, SessionTimeout: 500 * time.Millisecond})
		h := &inventory.Host{Name: "hang", Address: host, Port: p, User: "root", UserGiven: true, PortGiven: true}
		start := time.Now()
		conn, err := c.Connect(ctx, h)
		if !speak {
			if err == nil || !failure.IsRetryable(err) {
				t.Fatalf("silent peer: want a retryable handshake error, got %v", err)
			}
		} else {
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			_, err = conn.Exec(ctx, modules.Cmd{Argv: []string{"true"}})
			if err == nil || !failure.IsRetryable(err) || errors.Is(err, failure.ErrUnknownOutcome) {
				t.Fatalf("channel open that never answers: want a retryable error (the command never started), got %v", err)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("speak=%v: took %s, bound is 500ms", speak, d)
		}
	}
}
