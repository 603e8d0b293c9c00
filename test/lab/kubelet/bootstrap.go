package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/certificate/csr"
)

// CurrentClientCert is where the kubelet keeps its client certificate and
// key (one PEM file), as the real kubelet does.
const CurrentClientCert = "/var/lib/kubelet/pki/kubelet-client-current.pem"

// EnsureClientConfig makes kubeconfig usable: if it exists, its embedded
// client credentials are also written to CurrentClientCert (kubeadm's
// kubelet-finalize phase expects that file); if it does not, the kubelet
// performs TLS bootstrap with the bootstrap kubeconfig: it requests a
// kube-apiserver-client-kubelet certificate, waits until it is issued and
// writes kubeconfig pointing at it.
func EnsureClientConfig(ctx context.Context, kubeconfig, bootstrap, node string) error {
	if cfg, err := clientcmd.LoadFromFile(kubeconfig); err == nil {
		return persistEmbedded(cfg)
	}
	if bootstrap == "" {
		return fmt.Errorf("no kubeconfig at %s and no bootstrap kubeconfig", kubeconfig)
	}
	bcfg, err := clientcmd.LoadFromFile(bootstrap)
	if err != nil {
		return fmt.Errorf("bootstrap kubeconfig: %w", err)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*bcfg, nil).ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	pemBytes, err := requestCert(wctx, client, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}},
		certificatesv1.KubeAPIServerClientKubeletSignerName, certificatesv1.UsageClientAuth)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	if err := writePEM(pemBytes); err != nil {
		return err
	}
	var cluster *clientcmdapi.Cluster
	for _, c := range bcfg.Clusters {
		cluster = c
	}
	out := clientcmdapi.NewConfig()
	out.Clusters["default-cluster"] = cluster
	out.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: CurrentClientCert, ClientKey: CurrentClientCert}
	out.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth", Namespace: "default"}
	out.CurrentContext = "default-context"
	return clientcmd.WriteToFile(*out, kubeconfig)
}

func persistEmbedded(cfg *clientcmdapi.Config) error {
	for _, a := range cfg.AuthInfos {
		if len(a.ClientCertificateData) > 0 && len(a.ClientKeyData) > 0 {
			return writePEM(append(append([]byte{}, a.ClientCertificateData...), a.ClientKeyData...))
		}
	}
	return nil
}

func writePEM(data []byte) error {
	if err := os.MkdirAll(filepath.Dir(CurrentClientCert), 0o700); err != nil {
		return err
	}
	return os.WriteFile(CurrentClientCert, data, 0o600)
}

// requestCert asks for a certificate as the node (tmpl's subject and SANs,
// a new P-256 key), waits until it is issued, and returns the certificate
// and key as one PEM.
func requestCert(ctx context.Context, client kubernetes.Interface, tmpl *x509.CertificateRequest, signer string, usage certificatesv1.KeyUsage) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	name, uid, err := csr.RequestCertificate(client, csrPEM, "", signer, nil,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, usage}, key)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	certPEM, err := csr.WaitForCertificate(ctx, client, name, uid)
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, certPEM...), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...), nil
}
