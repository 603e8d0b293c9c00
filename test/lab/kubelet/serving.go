package kubelet

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
)

// CurrentServingCert is where the kubelet keeps its serving certificate and
// key when serverTLSBootstrap is on, as the real kubelet does.
const CurrentServingCert = "/var/lib/kubelet/pki/kubelet-server-current.pem"

// EnsureServingCert is the kubelet's serving-certificate bootstrap: unless
// CurrentServingCert holds a valid certificate for the node's name and IP,
// it requests a kubernetes.io/kubelet-serving certificate as the node,
// waits (as long as ctx allows) until someone approves and the signer issues
// it, and writes it with its key.
func EnsureServingCert(ctx context.Context, client kubernetes.Interface, node, ip string) error {
	if servingCertValid(node, ip) {
		return nil
	}
	pemBytes, err := requestCert(ctx, client, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
		DNSNames:    []string{node},
		IPAddresses: []net.IP{net.ParseIP(ip)},
	}, certificatesv1.KubeletServingSignerName, certificatesv1.UsageServerAuth)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(CurrentServingCert), 0o700); err != nil {
		return err
	}
	return os.WriteFile(CurrentServingCert, pemBytes, 0o600)
}

func servingCertValid(node, ip string) bool {
	b, err := os.ReadFile(CurrentServingCert)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || time.Now().After(c.NotAfter) {
		return false
	}
	return c.VerifyHostname(node) == nil && c.VerifyHostname(ip) == nil
}
