package modules

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kubeplay/kubeplay/transport"
	"sigs.k8s.io/yaml"
)

// CertExpiry reads the expiry of a node's kubeadm certificates (files and
// kubeconfigs, over SFTP) and of the certificates its components serve
// (over TLS, dialled from the node).
type CertExpiry struct{}

// CertExpiryParams are cert-expiry's parameters.
type CertExpiryParams struct {
	Files      []string      `yaml:"files" doc:"certificate files and kubeconfigs on the host (default: kubeadm's, those present)"`
	Serving    []string      `yaml:"serving" doc:"host:port endpoints whose served certificate to read, dialled from the host (default 127.0.0.1:6443 where an API server manifest exists)"`
	FailWithin time.Duration `yaml:"fail_within" doc:"fail when any certificate expires within this long (e.g. 7d); 0 never fails"`
}

// kubeadmCertFiles are the leaf certificates and kubeconfigs kubeadm
// renews (kubeadm certs check-expiration lists the same set).
var kubeadmCertFiles = []string{
	"/etc/kubernetes/admin.conf",
	"/etc/kubernetes/super-admin.conf",
	"/etc/kubernetes/controller-manager.conf",
	"/etc/kubernetes/scheduler.conf",
	"/etc/kubernetes/pki/apiserver.crt",
	"/etc/kubernetes/pki/apiserver-etcd-client.crt",
	"/etc/kubernetes/pki/apiserver-kubelet-client.crt",
	"/etc/kubernetes/pki/front-proxy-client.crt",
	"/etc/kubernetes/pki/etcd/healthcheck-client.crt",
	"/etc/kubernetes/pki/etcd/peer.crt",
	"/etc/kubernetes/pki/etcd/server.crt",
}

// Validate checks the parameters.
func (p *CertExpiryParams) Validate() error {
	for _, f := range p.Files {
		if !path.IsAbs(f) {
			return fmt.Errorf("files: %q is not an absolute path", f)
		}
	}
	for _, s := range p.Serving {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("serving: %q: %v", s, err)
		}
	}
	if p.FailWithin < 0 {
		return errors.New("fail_within must be positive")
	}
	return nil
}

// ErrCertExpiring is returned when a certificate expires within fail_within.
var ErrCertExpiring = errors.New("certificate expiring")

func (CertExpiry) Name() string { return "cert-expiry" }
func (CertExpiry) Doc() string {
	return "Read when the host's kubeadm certificates expire: the PKI files and the client certificates embedded in kubeconfigs (over SFTP, never copied to disk), and the certificates served on host:port endpoints (TLS through the host). Register exposes certs (name, source, subject, not_after, not_after_unix, expires_in_days, sans), earliest, earliest_unix and min_days. With fail_within it fails when one expires that soon. Changes nothing."
}
func (CertExpiry) NewParams() Params { return &CertExpiryParams{} }

// Check is Run: the step only reads.
func (m CertExpiry) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.Run(ctx, t, p)
}

type certInfo struct {
	Name     string    `json:"name"`
	Source   string    `json:"source"` // file path or "tls://host:port"
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	Unix     int64     `json:"not_after_unix"`
	Days     float64   `json:"expires_in_days"`
	SANs     []string  `json:"sans"` // DNS names, then IP addresses
}

// Run reads the certificates.
func (CertExpiry) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	cp := p.(*CertExpiryParams)
	node, ok := t.Conn.(transport.Node)
	if !ok {
		return Result{}, errors.New("cert-expiry needs an SSH (or local) connection")
	}
	files, explicit := cp.Files, len(cp.Files) > 0
	if !explicit {
		files = kubeadmCertFiles
	}
	now := t.Clock.Now()
	var certs []certInfo
	for _, f := range files {
		b, err := node.ReadFile(ctx, f)
		if err != nil {
			if !explicit {
				continue // kubeadm's files differ by role and version: take those present
			}
			return Result{}, fmt.Errorf("cert-expiry: %w", err)
		}
		c, err := leafCert(f, b)
		if err != nil {
			return Result{}, fmt.Errorf("cert-expiry: %s: %w", f, err)
		}
		certs = append(certs, info(strings.TrimSuffix(path.Base(f), path.Ext(f)), f, c, now))
	}
	serving := cp.Serving
	if len(serving) == 0 {
		if _, err := node.ReadFile(ctx, "/etc/kubernetes/manifests/kube-apiserver.yaml"); err == nil {
			serving = []string{"127.0.0.1:6443"}
		}
	}
	for _, s := range serving {
		c, err := servedCert(ctx, node, s)
		if err != nil {
			return Result{}, fmt.Errorf("cert-expiry: served certificate of %s: %w", s, err)
		}
		certs = append(certs, info("serving "+s, "tls://"+s, c, now))
	}
	if len(certs) == 0 {
		return Result{}, errors.New("cert-expiry: no certificate found on the host")
	}
	sort.Slice(certs, func(i, j int) bool { return certs[i].NotAfter.Before(certs[j].NotAfter) })
	first := certs[0]
	data := asData(struct {
		Certs        []certInfo `json:"certs"`
		Earliest     time.Time  `json:"earliest"`
		EarliestUnix int64      `json:"earliest_unix"`
		MinDays      float64    `json:"min_days"`
	}{certs, first.NotAfter, first.Unix, first.Days})
	res := Result{Data: data, Msg: fmt.Sprintf("%d certificates; the first to expire is %s on %s (%.0f days)", len(certs), first.Name, first.NotAfter.UTC().Format(time.DateOnly), first.Days)}
	if cp.FailWithin > 0 && first.NotAfter.Sub(now) < cp.FailWithin {
		var soon []string
		for _, c := range certs {
			if c.NotAfter.Sub(now) < cp.FailWithin {
				soon = append(soon, fmt.Sprintf("%s (%s)", c.Name, c.NotAfter.UTC().Format(time.DateOnly)))
			}
		}
		return res, fmt.Errorf("%w within %s: %s", ErrCertExpiring, cp.FailWithin, strings.Join(soon, ", "))
	}
	return res, nil
}

func info(name, source string, c *x509.Certificate, now time.Time) certInfo {
	sans := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	return certInfo{Name: name, Source: source, Subject: c.Subject.CommonName, NotAfter: c.NotAfter.UTC(), Unix: c.NotAfter.Unix(),
		Days: c.NotAfter.Sub(now).Hours() / 24, SANs: sans}
}

// leafCert parses a PEM certificate file, or the client certificate of a
// kubeconfig (its key is never decoded).
func leafCert(name string, b []byte) (*x509.Certificate, error) {
	if strings.HasSuffix(name, ".conf") {
		var kc struct {
			Users []struct {
				User struct {
					CertData string `json:"client-certificate-data"`
				} `json:"user"`
			} `json:"users"`
		}
		if err := yaml.Unmarshal(b, &kc); err != nil {
			return nil, fmt.Errorf("kubeconfig: %w", err)
		}
		if len(kc.Users) == 0 || kc.Users[0].User.CertData == "" {
			return nil, errors.New("kubeconfig has no embedded client certificate")
		}
		pemBytes, err := base64.StdEncoding.DecodeString(kc.Users[0].User.CertData)
		if err != nil {
			return nil, fmt.Errorf("client-certificate-data: %w", err)
		}
		b = pemBytes
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// servedCert does a TLS handshake with addr from the node and returns the
// leaf certificate. Only the certificate is read: nothing is trusted or sent.
func servedCert(ctx context.Context, node transport.Node, addr string) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := node.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	host, _, _ := net.SplitHostPort(addr)
	// the certificate is inspected, not trusted: no request follows
	tc := tls.Client(raw, &tls.Config{ServerName: host, InsecureSkipVerify: true}) //nolint:gosec
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	peers := tc.ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return nil, errors.New("no certificate served")
	}
	return peers[0], nil
}
