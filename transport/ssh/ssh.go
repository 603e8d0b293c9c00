// Package ssh reaches lab and cluster nodes over OpenSSH with
// golang.org/x/crypto/ssh: one connection per host reused across steps,
// host keys checked against known_hosts (fail closed), keepalives that
// detect dead peers, bounded dial/handshake/session setup, and commands
// whose outcome is reported as unknown when the connection drops mid-way.
package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport"
)

// ErrAuth means no offered credential was accepted. Not retried.
var ErrAuth = errors.New("ssh authentication failed")

// Options configure the SSH connector.
type Options struct {
	KnownHosts        string   // default ~/.ssh/known_hosts
	AcceptNew         bool     // trust unknown hosts on first use (explicit opt-in)
	IdentityFiles     []string // tried after the host's identity_file
	UseAgent          bool     // also offer keys from SSH_AUTH_SOCK
	Passphrase        func(path string) ([]byte, error)
	DialTimeout       time.Duration // TCP connect; default 10s
	HandshakeTimeout  time.Duration // SSH handshake and auth; default 15s
	SessionTimeout    time.Duration // opening a session channel; default 15s
	KeepAliveInterval time.Duration // default 5s
	KeepAliveMax      int           // missed keepalives before the peer is declared dead; default 3
	// SSHConfig is an ssh_config file whose HostName, User, Port,
	// IdentityFile and ProxyJump apply where the inventory is silent.
	// Default ~/.ssh/config when it exists; "none" for no file.
	SSHConfig string
	// BecomePassword is sudo's password for hosts with become: true (empty:
	// sudo must not ask for one). It reaches sudo through stdin only.
	BecomePassword secret.String
}

func (o *Options) defaults() {
	if o.KnownHosts == "" {
		home, _ := os.UserHomeDir()
		o.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 15 * time.Second
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 15 * time.Second
	}
	if o.KeepAliveInterval == 0 {
		o.KeepAliveInterval = 5 * time.Second
	}
	if o.KeepAliveMax == 0 {
		o.KeepAliveMax = 3
	}
}

// Connector opens connections to inventory hosts.
type Connector struct {
	opts      Options
	keys      *hostKeys
	sshConfig *userConfig
}

// NewConnector returns a connector.
func NewConnector(opts Options) *Connector {
	opts.defaults()
	return &Connector{opts: opts, keys: &hostKeys{path: opts.KnownHosts, acceptNew: opts.AcceptNew}, sshConfig: &userConfig{path: opts.SSHConfig}}
}

// Connect dials a host now, so that unreachable hosts and key problems
// surface before the first step.
func (c *Connector) Connect(ctx context.Context, h *inventory.Host) (transport.Conn, error) {
	conn := &Conn{host: h, c: c}
	if _, err := conn.client(ctx); err != nil {
		return nil, err
	}
	return conn, nil
}

// Conn is one host's connection. Exec redials when the previous connection
// died between commands.
type Conn struct {
	host  *inventory.Host
	c     *Connector
	mu    sync.Mutex
	cl    *gossh.Client
	jumps []*gossh.Client // jump host connections under cl, first to last
	sf    *sftp.Client
	dead  chan struct{}
}

// Close closes the connection.
func (s *Conn) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *Conn) closeLocked() error {
	if s.sf != nil {
		s.sf.Close()
		s.sf = nil
	}
	if s.cl == nil {
		return nil
	}
	err := s.cl.Close()
	s.cl = nil
	for i := len(s.jumps) - 1; i >= 0; i-- {
		s.jumps[i].Close()
	}
	s.jumps = nil
	return err
}

// client returns the live client, dialling if needed.
func (s *Conn) client(ctx context.Context) (*gossh.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		select {
		case <-s.dead:
			_ = s.closeLocked()
		default:
			return s.cl, nil
		}
	}
	cl, jumps, err := s.c.dial(ctx, s.host)
	if err != nil {
		return nil, err
	}
	s.cl, s.jumps, s.dead = cl, jumps, make(chan struct{})
	go s.keepalive(cl, s.dead)
	return cl, nil
}

// keepalive pings the server and closes the connection when it stops
// answering, so that blocked reads fail instead of hanging forever.
func (s *Conn) keepalive(cl *gossh.Client, dead chan struct{}) {
	t := time.NewTicker(s.c.opts.KeepAliveInterval)
	defer t.Stop()
	waitDone := make(chan struct{})
	go func() { _ = cl.Wait(); close(waitDone) }()
	missed := 0
	for {
		select {
		case <-waitDone:
			close(dead)
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := cl.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				missed = s.c.opts.KeepAliveMax
			} else {
				missed = 0
			}
		case <-time.After(s.c.opts.KeepAliveInterval):
			missed++
		}
		if missed >= s.c.opts.KeepAliveMax {
			_ = cl.Close()
			<-waitDone
			close(dead)
			return
		}
	}
}

// dial connects to h, through its jump hosts when it has some. It returns
// the host's client and the jump clients under it (to close with it).
func (c *Connector) dial(ctx context.Context, h *inventory.Host) (*gossh.Client, []*gossh.Client, error) {
	route, err := c.route(h)
	if err != nil {
		return nil, nil, err
	}
	var via *gossh.Client
	var jumps []*gossh.Client
	closeAll := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
	}
	for i, hp := range route {
		cl, err := c.dialHop(ctx, hp, via)
		if err != nil {
			closeAll()
			if i < len(route)-1 {
				return nil, nil, fmt.Errorf("jump host %s (on the way to %s): %w", hp.addr, h.Name, err)
			}
			return nil, nil, err
		}
		if i < len(route)-1 {
			jumps = append(jumps, cl)
		}
		via = cl
	}
	return via, jumps, nil
}

// dialHop opens one SSH connection: over TCP, or through via (the previous
// jump host) with direct-tcpip. Host keys are checked at every hop.
func (c *Connector) dialHop(ctx context.Context, hp hop, via *gossh.Client) (*gossh.Client, error) {
	var authTried atomic.Bool
	auth, closeAgent, err := c.auth(hp.name, hp.identity, &authTried)
	if err != nil {
		return nil, err
	}
	defer closeAgent() // the agent is asked only during the handshake
	cfg := &gossh.ClientConfig{
		User:              hp.user,
		Auth:              auth,
		HostKeyCallback:   c.keys.callback,
		HostKeyAlgorithms: c.keys.algorithms(hp.addr),
		Timeout:           c.opts.DialTimeout,
	}
	var nc net.Conn
	if via == nil {
		d := net.Dialer{Timeout: c.opts.DialTimeout, KeepAlive: 15 * time.Second}
		nc, err = d.DialContext(ctx, "tcp", hp.addr)
	} else {
		dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
		nc, err = via.DialContext(dctx, "tcp", hp.addr)
		cancel()
	}
	if err != nil {
		return nil, failure.Retryable(fmt.Errorf("dial %s: %w", hp.addr, err))
	}
	// the handshake can hang after connect: bound it (a tunnelled conn has
	// no deadlines, so a timer closes it)
	deadline := time.Now().Add(c.opts.HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	timer := time.AfterFunc(time.Until(deadline), func() { _ = nc.Close() })
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	cc, chans, reqs, err := gossh.NewClientConn(nc, hp.addr, cfg)
	timer.Stop()
	stop()
	if err != nil {
		nc.Close()
		var ane *gossh.AlgorithmNegotiationError
		if errors.As(err, &ane) && ane.What == "host key" && len(cfg.HostKeyAlgorithms) > 0 {
			// known_hosts pinned the key types and the host offers none of
			// them: its key changed type, which is a host-key failure
			// (final), not a network one
			err = &HostKeyError{Host: hp.addr, KnownHosts: c.keys.path, Err: ErrHostKeyMismatch,
				Line: "recorded: " + strings.Join(cfg.HostKeyAlgorithms, ", ") + "; offered: " + strings.Join(ane.RequestedAlgorithms, ", ")}
		}
		return nil, classifyHandshake(hp.addr, err, authTried.Load())
	}
	_ = nc.SetDeadline(time.Time{})
	return gossh.NewClient(cc, chans, reqs), nil
}

// classifyHandshake sorts handshake failures: host key problems and
// rejected credentials are final; network trouble is retryable. x/crypto/ssh
// has no typed error for a rejected login, so authTried (set when the
// server asked for our keys) tells a rejection from a broken connection.
func classifyHandshake(addr string, err error, authTried bool) error {
	var hk *HostKeyError
	var ne net.Error
	switch {
	case errors.As(err, &hk), errors.Is(err, ErrUnknownHost):
		return fmt.Errorf("ssh %s: %w", addr, err)
	case authTried && !errors.As(err, &ne) && !errors.Is(err, io.EOF):
		return fmt.Errorf("ssh %s: %w: %v", addr, ErrAuth, err)
	}
	return failure.Retryable(fmt.Errorf("ssh handshake %s: %w", addr, err))
}

// auth collects signers, in OpenSSH's order: the host's identity file and
// the configured files; the agent's keys; and, when no file was named, the
// default keys of ~/.ssh. They form one publickey method (x/crypto/ssh
// tries each method name once, so a second publickey method would never
// be tried). The returned func closes the agent connection.
func (c *Connector) auth(name, identity string, tried *atomic.Bool) ([]gossh.AuthMethod, func(), error) {
	var signers []gossh.Signer
	var problems []string
	files := append([]string{}, c.opts.IdentityFiles...)
	if identity != "" {
		files = append([]string{identity}, files...)
	}
	var defaults []string
	if len(files) == 0 {
		home, _ := os.UserHomeDir()
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if p := filepath.Join(home, ".ssh", n); fileExists(p) {
				defaults = append(defaults, p)
			}
		}
	}
	add := func(paths []string, prompt bool) {
		for _, f := range paths {
			s, err := c.signer(expandHome(f), prompt)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			signers = append(signers, s)
		}
	}
	add(files, true)
	closeAgent := func() {}
	if c.opts.UseAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if ac, err := net.Dial("unix", sock); err == nil {
				closeAgent = func() { ac.Close() }
				if as, err := agent.NewClient(ac).Signers(); err == nil {
					signers = append(signers, as...)
				}
			}
		}
	}
	// a default key that needs a passphrase is asked for only when the
	// agent had nothing
	add(defaults, len(signers) == 0)
	if len(signers) == 0 {
		closeAgent()
		return nil, nil, fmt.Errorf("%w: no usable key for %s (%s)", ErrAuth, name, strings.Join(problems, "; "))
	}
	return []gossh.AuthMethod{gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
		tried.Store(true)
		return signers, nil
	})}, closeAgent, nil
}

func (c *Connector) signer(path string, prompt bool) (gossh.Signer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	owned := true
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owned = int(sys.Uid) == os.Getuid()
	}
	if perm := st.Mode().Perm(); owned && perm&0o077 != 0 {
		// as OpenSSH: a private key of ours that others can read is not used
		return nil, fmt.Errorf("key %s: permissions %04o are too open: others can read it; chmod 600 it (OpenSSH refuses it too)", path, perm)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	s, err := gossh.ParsePrivateKey(pem)
	var missing *gossh.PassphraseMissingError
	if errors.As(err, &missing) {
		if c.opts.Passphrase == nil || !prompt {
			return nil, fmt.Errorf("key %s is encrypted and no passphrase prompt is available", path)
		}
		pass, perr := c.opts.Passphrase(path)
		if perr != nil {
			return nil, perr
		}
		s, err = gossh.ParsePrivateKeyWithPassphrase(pem, pass)
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return s, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		home, _ := os.UserHomeDir()
		return filepath.Join(home, p[2:])
	}
	return p
}

// session opens a session channel, bounded and raced against ctx.
func (s *Conn) session(ctx context.Context) (*gossh.Session, error) {
	cl, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	type res struct {
		s   *gossh.Session
		err error
	}
	ch := make(chan res, 1)
	go func() {
		sess, err := cl.NewSession()
		ch <- res{sess, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.mu.Lock()
			_ = s.closeLocked() // the next command redials
			s.mu.Unlock()
			return nil, failure.Retryable(fmt.Errorf("open session on %s: %w", s.host.Name, r.err))
		}
		return r.s, nil
	case <-time.After(s.c.opts.SessionTimeout):
	case <-ctx.Done():
	}
	go func() {
		if r := <-ch; r.s != nil {
			r.s.Close()
		}
	}()
	s.mu.Lock()
	_ = s.closeLocked()
	s.mu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, failure.Retryable(fmt.Errorf("open session on %s: timed out after %s", s.host.Name, s.c.opts.SessionTimeout))
}

// Exec runs a command. A non-zero exit is reported in RC. If the connection
// dies or ctx ends while the command runs, the outcome is unknown: the
// command may or may not have had its effect.
func (s *Conn) Exec(ctx context.Context, c transport.Cmd) (transport.ExecResult, error) {
	line, cleanup, err := s.commandLine(ctx, c)
	if err != nil {
		return transport.ExecResult{}, err
	}
	if cleanup != "" {
		// the command removes its env file first thing; this covers a
		// command that never started
		defer s.remove(cleanup)
	}
	var bc *become
	if s.becomes() {
		bc = newBecome(s.c.opts.BecomePassword.Reveal())
		line = bc.line(line)
	}
	sess, err := s.session(ctx)
	if err != nil {
		return transport.ExecResult{}, err
	}
	defer sess.Close()
	// the session's copy goroutines may still write after an interrupted
	// Exec has returned: the buffers are safe to read meanwhile
	var out, errb syncBuffer
	var bstderr *becomeStderr
	if bc != nil {
		bstderr = &becomeStderr{b: bc, w: &errb}
		sess.Stdout, sess.Stderr = &becomeStdout{b: bc, w: &out}, bstderr
		pipe, err := sess.StdinPipe()
		if err != nil {
			return transport.ExecResult{}, failure.Retryable(fmt.Errorf("stdin on %s: %w", s.host.Name, err))
		}
		fed := make(chan struct{})
		defer close(fed)
		go bc.feed(pipe, c.Stdin, fed)
	} else {
		sess.Stdout, sess.Stderr = &out, &errb
		if c.Stdin != nil {
			sess.Stdin = c.Stdin
		}
	}
	if err := sess.Start(line); err != nil {
		return transport.ExecResult{}, failure.Retryable(fmt.Errorf("start command on %s: %w", s.host.Name, err))
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// the remote end is not waited for: a command that ignores the
		// signal (or a server that does not deliver it) would hold the
		// step for as long as it runs. Closing the channel hangs up its
		// pipes; Wait's goroutine ends when the server closes it.
		_ = sess.Signal(gossh.SIGTERM)
		sess.Close()
		return transport.ExecResult{Stdout: out.String(), Stderr: errb.String()},
			fmt.Errorf("%w: %s on %s interrupted: %w", failure.ErrUnknownOutcome, firstWord(c), s.host.Name, ctx.Err())
	}
	if bstderr != nil {
		bstderr.flush()
	}
	res := transport.ExecResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *gossh.ExitError
	var missing *gossh.ExitMissingError
	if bc != nil && !bc.hasStarted() && (err == nil || errors.As(err, &ee)) {
		// sudo exited without running the command
		return res, fmt.Errorf("%w on %s for %s: %s", ErrBecome, s.host.Name, s.host.User, strings.TrimSpace(lastLine(res.Stderr)))
	}
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &ee):
		res.RC = ee.ExitStatus()
		return res, nil
	case errors.As(err, &missing), errors.Is(err, io.EOF):
		return res, fmt.Errorf("%w: connection to %s lost while %s ran", failure.ErrUnknownOutcome, s.host.Name, firstWord(c))
	default:
		return res, fmt.Errorf("%w: %s on %s: %w", failure.ErrUnknownOutcome, firstWord(c), s.host.Name, err)
	}
}

func firstWord(c transport.Cmd) string {
	if len(c.Argv) > 0 {
		return strconv.Quote(c.Argv[0])
	}
	f := strings.Fields(c.Shell)
	if len(f) == 0 {
		return "command"
	}
	return strconv.Quote(f[0])
}

// commandLine builds the remote command line. Argv words are quoted, so
// user strings are never interpreted by the remote shell. Environment values
// (which may be secrets) never appear on the command line: they are written
// to a 0600 file over SFTP that the command sources and removes first.
func (s *Conn) commandLine(ctx context.Context, c transport.Cmd) (string, string, error) {
	var body string
	switch {
	case c.Shell != "":
		body = "/bin/sh -c " + Quote(c.Shell)
	case len(c.Argv) > 0:
		body = Join(c.Argv)
	default:
		return "", "", errors.New("empty command")
	}
	if c.Dir != "" {
		body = "cd " + Quote(c.Dir) + " && " + body
	}
	if len(c.Env) == 0 {
		return body, "", nil
	}
	var env strings.Builder
	for k, v := range c.Env {
		if !validEnvName(k) {
			return "", "", fmt.Errorf("invalid environment variable name %q", k)
		}
		fmt.Fprintf(&env, "export %s=%s\n", k, Quote(v.Reveal()))
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	path := "/tmp/.kubeplay-env-" + hex.EncodeToString(b)
	if err := s.writeFile(ctx, path, []byte(env.String()), 0o600); err != nil {
		return "", "", err
	}
	return fmt.Sprintf(". %s && rm -f %s && %s", path, path, body), path, nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// SFTP returns the connection's SFTP client, creating it once.
func (s *Conn) SFTP(ctx context.Context) (*sftp.Client, error) {
	cl, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sf != nil {
		return s.sf, nil
	}
	sf, err := sftp.NewClient(cl)
	if err != nil {
		return nil, failure.Retryable(fmt.Errorf("sftp on %s: %w", s.host.Name, err))
	}
	s.sf = sf
	return sf, nil
}

// writeFile creates path with mode (before any byte is written) and data.
func (s *Conn) writeFile(ctx context.Context, path string, data []byte, mode os.FileMode) error {
	sf, err := s.SFTP(ctx)
	if err != nil {
		return err
	}
	f, err := sf.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s on %s: %w", path, s.host.Name, err)
	}
	defer f.Close()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return nil
}

func (s *Conn) remove(path string) {
	if sf, err := s.SFTP(context.Background()); err == nil {
		_ = sf.Remove(path)
	}
}

// DialContext opens a TCP connection from the host (SSH direct-tcpip), so
// that services bound to the node's loopback (etcd's client port) are
// reachable without exposing them.
func (s *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	cl, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	c, err := cl.DialContext(ctx, network, addr)
	if err != nil {
		return nil, failure.Retryable(fmt.Errorf("connect to %s through %s: %w", addr, s.host.Name, err))
	}
	return c, nil
}

// becomes reports whether commands on this host run through sudo.
func (s *Conn) becomes() bool { return s.host.Become && s.host.User != "root" }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	if s == "" {
		return "(no message)"
	}
	return s
}

// ReadFile reads a file of the host over SFTP (through sudo cat on a become
// host, whose login user may not read it). The content stays in memory.
func (s *Conn) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if s.becomes() {
		r, err := s.Exec(ctx, transport.Cmd{Argv: []string{"cat", "--", path}})
		if err != nil {
			return nil, err
		}
		if r.RC != 0 {
			return nil, fmt.Errorf("read %s on %s: %s", path, s.host.Name, lastLine(r.Stderr))
		}
		return []byte(r.Stdout), nil
	}
	sf, err := s.SFTP(ctx)
	if err != nil {
		return nil, err
	}
	f, err := sf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s on %s: %w", path, s.host.Name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, failure.Retryable(fmt.Errorf("read %s on %s: %w", path, s.host.Name, err))
	}
	return b, nil
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
