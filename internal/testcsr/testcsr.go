// Package testcsr builds certificate signing requests for tests: honest
// kubelet-serving ones and every way one can be wrong.
package testcsr

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
)

// Spec is what goes into the request.
type Spec struct {
	CN     string
	Orgs   []string
	DNS    []string
	IPs    []string
	Emails []string
	URIs   []string
}

// PEM returns a signed PEM CERTIFICATE REQUEST for s.
func PEM(s Spec) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: s.CN, Organization: s.Orgs}, DNSNames: s.DNS, EmailAddresses: s.Emails}
	for _, ip := range s.IPs {
		tpl.IPAddresses = append(tpl.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range s.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		tpl.URIs = append(tpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// Node is an honest kubelet-serving request for node with its addresses.
func Node(node string, dns []string, ips []string) Spec {
	return Spec{CN: "system:node:" + node, Orgs: []string{"system:nodes"}, DNS: dns, IPs: ips}
}
