package ssh_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
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
	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// serverMode is how a loopback test server misbehaves.
type serverMode int

const (
	silent        serverMode = iota // accepts TCP, never says a word: a handshake that hangs
	noChannel                       // completes the handshake, never answers a channel open
	stuckCommand                    // starts every command and never ends it
	deafAfterExec                   // starts a command, then reads nothing more (sshd while the command's pipes are open)
)

// deafConn stops reading once deaf is closed, until stop is.
type deafConn struct {
	net.Conn
	deaf, stop chan struct{}
}

func (c deafConn) Read(p []byte) (int, error) {
	select {
	case <-c.deaf:
		<-c.stop
		return 0, io.EOF
	default:
		return c.Conn.Read(p)
	}
}

// hangServer listens on loopback and misbehaves as mode says. It accepts
// any client key. Requests it receives on sessions (exec, signal, ...)
// are sent on reqs, and "close" when the client closes a session.
func hangServer(t *testing.T, mode serverMode) (addr string, knownHosts string, clientKey string, reqs <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
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
	seen := make(chan string, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if mode == silent {
				continue
			}
			deaf := make(chan struct{})
			var once sync.Once
			go func() {
				_, chans, reqs, err := gossh.NewServerConn(deafConn{c, deaf, stop}, cfg)
				if err != nil {
					return
				}
				go gossh.DiscardRequests(reqs)
				for nc := range chans {
					if mode == noChannel {
						continue // never accepted, never rejected
					}
					ch, chReqs, err := nc.Accept()
					if err != nil {
						return
					}
					go func() {
						for r := range chReqs {
							seen <- r.Type
							if r.WantReply {
								r.Reply(true, nil)
							}
							if r.Type == "exec" && mode == deafAfterExec {
								once.Do(func() { close(deaf) })
							}
						}
						seen <- "close"
						// like sshd with a child still running: our side
						// stays open until the command would have ended
						<-stop
						ch.Close()
					}()
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
	return l.Addr().String(), knownHosts, clientKey, seen
}

// Reliability case 3 (test/README.md): a peer that accepts TCP but never finishes the
// handshake, and one that never answers a channel open, both fail within
// their bounds as retryable errors instead of hanging the run.
func TestHandshakeAndChannelOpenHangsAreBounded(t *testing.T) {
	ctx := context.Background()
	for _, speak := range []bool{false, true} {
		mode := silent
		if speak {
			mode = noChannel
		}
		addr, kh, key, _ := hangServer(t, mode)
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
			_, err = conn.Exec(ctx, transport.Cmd{Argv: []string{"true"}})
			if err == nil || !failure.IsRetryable(err) || errors.Is(err, failure.ErrUnknownOutcome) {
				t.Fatalf("channel open that never answers: want a retryable error (the command never started), got %v", err)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("speak=%v: took %s, bound is 500ms", speak, d)
		}
	}
}

// A step's timeout ends a command at once over SSH: the command is
// signalled and its session closed, and Exec does not wait for a remote
// end that may never come. The outcome is unknown.
func TestExecTimeoutDoesNotWaitForTheRemoteEnd(t *testing.T) {
	t.Run("server that never closes", func(t *testing.T) {
		addr, kh, key, _ := hangServer(t, deafAfterExec)
		testExecTimeout(t, addr, kh, key)
	})
	addr, kh, key, seen := hangServer(t, stuckCommand)
	testExecTimeout(t, addr, kh, key)
	var got []string
	timeout := time.After(3 * time.Second)
	for len(got) < 3 {
		select {
		case r := <-seen:
			got = append(got, r)
		case <-timeout:
			t.Fatalf("server saw %v; want exec, signal, close", got)
		}
	}
	if got[0] != "exec" || got[1] != "signal" || got[2] != "close" {
		t.Fatalf("server saw %v; want exec, signal, close", got)
	}
}

func testExecTimeout(t *testing.T, addr, kh, key string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	c := ssh.NewConnector(ssh.Options{KnownHosts: kh, SSHConfig: "none", IdentityFiles: []string{key}})
	h := &inventory.Host{Name: "stuck", Address: host, Port: p, User: "root", UserGiven: true, PortGiven: true}
	conn, err := c.Connect(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = conn.Exec(ctx, transport.Cmd{Shell: "sleep 30; echo done"})
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Exec returned after %s", took)
	}
	if !errors.Is(err, failure.ErrUnknownOutcome) || failure.IsRetryable(err) {
		t.Fatalf("want an unknown outcome, not retryable; got %v", err)
	}
}
