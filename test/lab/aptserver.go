package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/kubeplay/kubeplay/test/lab/proc"
)

// RepoHost is the name nodes use for the package repositories: the docs'
// host, resolved on every node to the lab bridge.
const RepoHost = "pkgs.k8s.io"

func (l *Lab) tlsDir() string { return filepath.Join(l.aptRoot(), "tls") }

// CAFile is the lab CA nodes trust for the repository's TLS.
func (l *Lab) CAFile() string { return filepath.Join(l.tlsDir(), "ca.crt") }

// ensureRepoTLS creates a lab CA and a certificate for pkgs.k8s.io (once).
func (l *Lab) ensureRepoTLS() error {
	if _, err := os.Stat(filepath.Join(l.tlsDir(), "server.key")); err == nil {
		return nil
	}
	if err := os.MkdirAll(l.tlsDir(), 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubeplay lab CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: RepoHost},
		DNSNames: []string{RepoHost}, IPAddresses: []net.IP{net.ParseIP(BridgeIP)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	files := map[string][]byte{
		"ca.crt":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(l.tlsDir(), n), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// ServeRepo serves the repositories over HTTPS on the bridge until ctx
// ends (run detached by Up through `lab serve-apt`).
func ServeRepo(ctx context.Context, cfg Config) error {
	l := &Lab{cfg: cfg.withDefaults()}
	cert, err := tls.LoadX509KeyPair(filepath.Join(l.tlsDir(), "server.crt"), filepath.Join(l.tlsDir(), "server.key"))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              net.JoinHostPort(BridgeIP, "443"),
		Handler:           http.FileServer(http.Dir(filepath.Join(l.aptRoot(), "repo"))),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServeTLS("", ""); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

func (l *Lab) aptPIDFile() string { return filepath.Join(l.cfg.StateDir, "apt-server.pid") }

// startRepoServer runs `lab serve-apt` detached, once.
func (l *Lab) startRepoServer(ctx context.Context) error {
	if pidAlive(l.aptPIDFile()) {
		return nil
	}
	if err := l.ensureRepoTLS(); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(l.cfg.StateDir, "logs", "apt-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(l.binDir(), "lab"), "serve-apt")
	cmd.Env = append(os.Environ(), "KUBEPLAY_LAB_DIR="+l.cfg.StateDir, "KUBEPLAY_LAB_CACHE="+l.cacheDir())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(l.aptPIDFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	if err := waitPort(ctx, net.JoinHostPort(BridgeIP, "443"), 10*time.Second); err != nil {
		return fmt.Errorf("package repository server: %w (see %s)", err, logf.Name())
	}
	return nil
}

// stopPIDFile kills the process recorded in a pid file.
func stopPIDFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if pid, _ := strconv.Atoi(string(b)); proc.Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && proc.Alive(pid); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.Remove(path)
}

func setsid() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

func pidAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, _ := strconv.Atoi(string(b))
	return proc.Alive(pid)
}
