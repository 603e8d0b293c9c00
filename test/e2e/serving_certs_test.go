package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/internal/testcsr"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestBundledKubeletServingCerts turns serverTLSBootstrap on: every lab
// kubelet then asks for a serving certificate, the playbook approves
// exactly those CSRs, and each node ends with a certificate for its own
// name and address; a CSR planted for w1 with w2's address stays pending. A
// second run changes nothing.
func TestBundledKubeletServingCerts(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	w2, _ := l.Node("w2")
	req, err := testcsr.PEM(testcsr.Node("w1", []string{"w1"}, []string{w2.IP}))
	if err != nil {
		t.Fatal(err)
	}
	planted := "kpcsr-planted-" + time.Now().Format("150405")
	serving := []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth}
	start := time.Now()
	if _, err := as(t, l, "system:node:w1", "system:nodes", "system:authenticated").CertificatesV1().CertificateSigningRequests().Create(ctx,
		&certv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: planted},
			Spec: certv1.CertificateSigningRequestSpec{Request: req, SignerName: certv1.KubeletServingSignerName, Usages: serving}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer k.CertificatesV1().CertificateSigningRequests().Delete(ctx, planted, metav1.DeleteOptions{})
	// the run starts (by its clock) before the planted CSR, so that it is
	// one of those the run looks at
	r := runPlaybook(t, l, bundled(t, "kubelet-serving-certs"), func(o *runner.Options) {
		o.Kube = k
		o.Dynamic = dyn(t, l)
		o.Clock = &startedAt{t0: start.Add(-5 * time.Second)}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	csrs, err := k.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issued := map[string]bool{}
	for _, c := range csrs.Items {
		if c.Spec.SignerName != certv1.KubeletServingSignerName || c.CreationTimestamp.Time.Before(start.Add(-time.Second)) {
			continue
		}
		approved := false
		for _, cond := range c.Status.Conditions {
			approved = approved || cond.Type == certv1.CertificateApproved
		}
		if c.Name == planted {
			if approved {
				t.Fatal("the CSR with another node's IP was approved")
			}
			continue
		}
		if approved && len(c.Status.Certificate) > 0 {
			issued[strings.TrimPrefix(c.Spec.Username, "system:node:")] = true
		}
	}
	for _, n := range l.ClusterNodes() {
		if !issued[n.Name] {
			t.Errorf("no serving certificate issued for %s (issued: %v)", n.Name, issued)
		}
		out, _ := l.Exec(ctx, n.Name, "openssl x509 -noout -ext subjectAltName -in /var/lib/kubelet/pki/kubelet-server-current.pem")
		if !strings.Contains(out, "IP Address:"+n.IP) {
			t.Errorf("%s: serving certificate SANs %q", n.Name, out)
		}
	}
	if r = runPlaybook(t, l, bundled(t, "kubelet-serving-certs"), func(o *runner.Options) { o.Kube, o.Dynamic = k, dyn(t, l) }); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
}
