package modules

import (
	"context"
	"encoding/pem"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeplay/kubeplay/internal/testcsr"
)

func servingCSR(t *testing.T, name, user string, groups []string, s testcsr.Spec, usages ...certv1.KeyUsage) *certv1.CertificateSigningRequest {
	t.Helper()
	b, err := testcsr.PEM(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(usages) == 0 {
		usages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth}
	}
	return &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Now()},
		Spec: certv1.CertificateSigningRequestSpec{Request: b, SignerName: kubeletServingSigner, Usages: usages,
			Username: user, Groups: groups},
	}
}

func TestVerifyServingCSR(t *testing.T) {
	node := &corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "10.0.0.14"}, {Type: corev1.NodeHostName, Address: "w1"}}}}
	allowed := nodeAddresses(node, "w1.lab.example")
	nodeUser, nodeGroups := "system:node:w1", []string{"system:nodes", "system:authenticated"}
	honest := testcsr.Node("w1", []string{"w1", "w1.lab.example"}, []string{"10.0.0.14"})
	cases := map[string]struct {
		csr  *certv1.CertificateSigningRequest
		want string
	}{
		"honest":           {servingCSR(t, "a", nodeUser, nodeGroups, honest), ""},
		"other node IP":    {servingCSR(t, "b", nodeUser, nodeGroups, testcsr.Node("w1", []string{"w1"}, []string{"10.0.0.15"})), "IP SAN 10.0.0.15"},
		"kubernetes SAN":   {servingCSR(t, "c", nodeUser, nodeGroups, testcsr.Node("w1", []string{"kubernetes.default"}, nil)), `DNS SAN "kubernetes.default"`},
		"wrong CN":         {servingCSR(t, "d", nodeUser, nodeGroups, testcsr.Spec{CN: "system:node:w2", Orgs: []string{"system:nodes"}, DNS: []string{"w1"}}), "CN"},
		"extra O":          {servingCSR(t, "e", nodeUser, nodeGroups, testcsr.Spec{CN: "system:node:w1", Orgs: []string{"system:nodes", "system:masters"}, DNS: []string{"w1"}}), "O ["},
		"client auth":      {servingCSR(t, "f", nodeUser, nodeGroups, honest, certv1.UsageDigitalSignature, certv1.UsageClientAuth), `usage "client auth"`},
		"email SAN":        {servingCSR(t, "g", nodeUser, nodeGroups, testcsr.Spec{CN: "system:node:w1", Orgs: []string{"system:nodes"}, DNS: []string{"w1"}, Emails: []string{"a@b.c"}}), "email SANs"},
		"URI SAN":          {servingCSR(t, "h", nodeUser, nodeGroups, testcsr.Spec{CN: "system:node:w1", Orgs: []string{"system:nodes"}, DNS: []string{"w1"}, URIs: []string{"spiffe://x/y"}}), "URI SANs"},
		"not a node":       {servingCSR(t, "i", "kubernetes-admin", []string{"kubeadm:cluster-admins"}, honest), `requestor "kubernetes-admin"`},
		"not in the group": {servingCSR(t, "j", nodeUser, []string{"system:authenticated"}, honest), "not in group"},
		"no SANs":          {servingCSR(t, "k", nodeUser, nodeGroups, testcsr.Node("w1", nil, nil)), "no DNS or IP SANs"},
	}
	bad := servingCSR(t, "l", nodeUser, nodeGroups, honest)
	block, _ := pem.Decode(bad.Spec.Request)
	block.Bytes[len(block.Bytes)-1] ^= 1 // the last byte of the signature
	bad.Spec.Request = pem.EncodeToMemory(block)
	cases["tampered"] = struct {
		csr  *certv1.CertificateSigningRequest
		want string
	}{bad, "invalid signature"}
	for name, c := range cases {
		got := verifyServingCSR(c.csr, "w1", allowed)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", name, got, c.want)
		}
	}
}

// A conflict on approval re-reads the CSR: still pending, the approval is
// retried; decided by someone else meanwhile, it is left alone.
func TestCSRApproveConflictRereads(t *testing.T) {
	for _, decidedMeanwhile := range []bool{false, true} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.14"}}}}
		csr := servingCSR(t, "csr-1", "system:node:w1", []string{"system:nodes"}, testcsr.Node("w1", nil, []string{"10.0.0.14"}))
		cs := fake.NewSimpleClientset(node, csr)
		conflicts := 0
		cs.PrependReactor("update", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() != "approval" || conflicts > 0 {
				return false, nil, nil
			}
			conflicts++
			if decidedMeanwhile {
				c := csr.DeepCopy()
				c.Status.Conditions = []certv1.CertificateSigningRequestCondition{{Type: certv1.CertificateDenied, Status: corev1.ConditionTrue}}
				_ = cs.Tracker().Update(schema.GroupVersionResource{Group: "certificates.k8s.io", Version: "v1", Resource: "certificatesigningrequests"}, c, "")
			}
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}, "csr-1", nil)
		})
		tg := &Target{Host: HostInfo{Name: "w1", NodeName: "w1"}, Cluster: Cluster{Kube: cs}, Clock: RealClock{}, RunID: "r1", RunStart: time.Now().Add(-time.Minute)}
		p := &CSRApproveParams{}
		ytree.FillDefaults(p)
		_ = p.Validate()
		r, err := CSRApprove{}.Run(context.Background(), tg, p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := cs.CertificatesV1().CertificateSigningRequests().Get(context.Background(), "csr-1", metav1.GetOptions{})
		approved := false
		for _, c := range got.Status.Conditions {
			approved = approved || c.Type == certv1.CertificateApproved
		}
		if conflicts != 1 || approved == decidedMeanwhile || r.Changed == decidedMeanwhile {
			t.Fatalf("decided meanwhile %v: conflicts %d, approved %v, result %+v", decidedMeanwhile, conflicts, approved, r)
		}
	}
}
