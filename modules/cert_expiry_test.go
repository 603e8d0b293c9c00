package modules_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/modules"
)

func selfSigned(t *testing.T, cn string, notAfter time.Time) ([]byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func TestCertExpiryFilesKubeconfigsAndServing(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	apiCrt, _ := selfSigned(t, "kube-apiserver", now.Add(300*24*time.Hour))
	os.WriteFile(filepath.Join(dir, "apiserver.crt"), apiCrt, 0o600)
	adminCrt, _ := selfSigned(t, "kubernetes-admin", now.Add(20*24*time.Hour))
	kc := "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    client-certificate-data: " + base64.StdEncoding.EncodeToString(adminCrt) + "\n    client-key-data: bm90LWEta2V5\n"
	os.WriteFile(filepath.Join(dir, "admin.conf"), []byte(kc), 0o600)
	srvCrt, srvKey := selfSigned(t, "served", now.Add(100*24*time.Hour))
	pair, _ := tls.X509KeyPair(srvCrt, srvKey)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()

	p := &modules.CertExpiryParams{Files: []string{filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "admin.conf")}, Serving: []string{ln.Addr().String()}}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := modules.CertExpiry{}.Run(context.Background(), target(false), p)
	if err != nil {
		t.Fatal(err)
	}
	certs := res.Data["certs"].([]any)
	first := certs[0].(map[string]any)
	if len(certs) != 3 || first["name"] != "admin" || first["subject"] != "kubernetes-admin" {
		t.Fatalf("certs sorted by expiry, admin first: %v", certs)
	}
	if d := res.Data["min_days"].(float64); d < 19.9 || d > 20.1 {
		t.Fatalf("min_days %v", d)
	}
	served := certs[1].(map[string]any)
	if served["source"] != "tls://"+ln.Addr().String() || served["subject"] != "served" {
		t.Fatalf("served cert: %v", served)
	}
	// fail_within names what expires that soon
	p.FailWithin = 30 * 24 * time.Hour
	_, err = modules.CertExpiry{}.Run(context.Background(), target(false), p)
	if !errors.Is(err, modules.ErrCertExpiring) || !strings.Contains(err.Error(), "admin (") || strings.Contains(err.Error(), "apiserver (") {
		t.Fatalf("want admin named as expiring: %v", err)
	}
	// a file that is not a certificate is an error, not a silent skip
	os.WriteFile(filepath.Join(dir, "junk.crt"), []byte("junk"), 0o600)
	p = &modules.CertExpiryParams{Files: []string{filepath.Join(dir, "junk.crt")}}
	if _, err := (modules.CertExpiry{}).Run(context.Background(), target(false), p); err == nil {
		t.Fatal("junk must fail")
	}
}

func TestFetchIsAtomicAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "admin.conf")
	os.WriteFile(src, []byte("v1"), 0o644)
	p := &modules.FetchParams{Src: src, Dest: filepath.Join(dir, "out", "kubeconfig")}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := modules.Fetch{}.Run(context.Background(), target(false), p)
	if err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
	st, _ := os.Stat(p.Dest)
	if b, _ := os.ReadFile(p.Dest); string(b) != "v1" || st.Mode().Perm() != 0o600 {
		t.Fatalf("dest %q %v", b, st.Mode())
	}
	if res, _ := (modules.Fetch{}).Run(context.Background(), target(false), p); res.Changed {
		t.Fatal("same content must be unchanged")
	}
	os.WriteFile(src, []byte("v2"), 0o644)
	if res, _ := (modules.Fetch{}).Check(context.Background(), target(true), p); !res.Changed {
		t.Fatal("check must see the new content")
	}
	if b, _ := os.ReadFile(p.Dest); string(b) != "v1" {
		t.Fatal("check must not write")
	}
	for _, bad := range []modules.FetchParams{{Src: "rel", Dest: "x"}, {Src: "/a", Dest: "x", Mode: "0999"}, {Src: "/a", Dest: "x", Mode: "4755"}} {
		ytree.FillDefaults(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v must be refused", bad)
		}
	}
}
