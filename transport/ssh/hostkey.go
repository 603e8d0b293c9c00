package ssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

var (
	// ErrHostKeyMismatch means the host presented a key other than the one
	// recorded: possibly a man in the middle, or a rebuilt host. Never retried.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrUnknownHost means no key is recorded for the host and trust on
	// first use was not asked for. Never retried.
	ErrUnknownHost = errors.New("unknown host key")
)

// HostKeyError explains a refused host key with its fingerprint.
type HostKeyError struct {
	Host        string
	Fingerprint string
	KnownHosts  string
	Err         error // ErrHostKeyMismatch or ErrUnknownHost
	Line        string
}

func (e *HostKeyError) Error() string {
	if e.Fingerprint == "" {
		// the server offered no key of a type known_hosts records
		return fmt.Sprintf("%v: %s offers no host key of the types %s records for it (%s); if the host was rebuilt with another key type, remove the old entry; otherwise someone may be intercepting the connection",
			e.Err, e.Host, e.KnownHosts, e.Line)
	}
	if errors.Is(e.Err, ErrUnknownHost) {
		return fmt.Sprintf("%v: %s offered %s, which is not in %s; verify it out of band, then add it (or pass --ssh-accept-new to trust it on first use)",
			e.Err, e.Host, e.Fingerprint, e.KnownHosts)
	}
	return fmt.Sprintf("%v: %s offered %s, but %s records another key (%s); if the host was rebuilt, remove the old entry; otherwise someone may be intercepting the connection",
		e.Err, e.Host, e.Fingerprint, e.KnownHosts, e.Line)
}
func (e *HostKeyError) Unwrap() error { return e.Err }

// hostKeys checks host keys against a known_hosts file.
type hostKeys struct {
	path      string
	acceptNew bool
	mu        sync.Mutex
}

func (h *hostKeys) load() (gossh.HostKeyCallback, error) {
	if _, err := os.Stat(h.path); errors.Is(err, os.ErrNotExist) {
		if !h.acceptNew {
			return nil, fmt.Errorf("known_hosts file %s does not exist: %w", h.path, ErrUnknownHost)
		}
		if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(h.path, nil, 0o600); err != nil {
			return nil, err
		}
	}
	return knownhosts.New(h.path)
}

// algorithms lists the key types recorded for addr, so that the server is
// asked for a key type we can verify (otherwise a host with several keys
// may offer an unrecorded type and look like a mismatch).
func (h *hostKeys) algorithms(addr string) []string {
	cb, err := h.load()
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey{}); errors.As(err, &ke) {
		seen := map[string]bool{}
		var out []string
		for _, k := range ke.Want {
			for _, a := range algosFor(k.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
		return out
	}
	return nil
}

func algosFor(keyType string) []string {
	if keyType == gossh.KeyAlgoRSA {
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// callback verifies a host's key, failing closed.
func (h *hostKeys) callback(hostname string, remote net.Addr, key gossh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cb, err := h.load()
	if err != nil {
		return err
	}
	err = cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	if err == nil || !errors.As(err, &ke) {
		return err
	}
	fp := gossh.FingerprintSHA256(key)
	if len(ke.Want) > 0 {
		return &HostKeyError{Host: hostname, Fingerprint: key.Type() + " " + fp, KnownHosts: h.path, Err: ErrHostKeyMismatch,
			Line: fmt.Sprintf("%s:%d", ke.Want[0].Filename, ke.Want[0].Line)}
	}
	if !h.acceptNew {
		return &HostKeyError{Host: hostname, Fingerprint: key.Type() + " " + fp, KnownHosts: h.path, Err: ErrUnknownHost}
	}
	f, err := os.OpenFile(h.path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
	return err
}

// probeKey is a key no host has, used to read which types are recorded.
type probeKey struct{}

func (probeKey) Type() string                          { return "kubeplay-probe" }
func (probeKey) Marshal() []byte                       { return []byte("kubeplay-probe") }
func (probeKey) Verify([]byte, *gossh.Signature) error { return errors.New("probe") }
