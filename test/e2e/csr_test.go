package e2e

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/internal/testcsr"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

// as is a client acting as user with groups (admin impersonation).
func as(t *testing.T, l *lab.Lab, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", l.KubeconfigFile())
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCSRApproveInTheLab creates real kubelet-serving CSRs, the honest one
// and every malicious kind, and checks that csr-approve approves exactly
// the honest one (which the controller manager then signs) and denies the
// others with their reason.
func TestCSRApproveInTheLab(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	w1, _ := l.Node("w1")
	w2, _ := l.Node("w2")
	admin := as(t, l, "")
	node := func(n string) kubernetes.Interface {
		return as(t, l, "system:node:"+n, "system:nodes", "system:authenticated")
	}
	type tc struct {
		client kubernetes.Interface
		spec   testcsr.Spec
		usages []certv1.KeyUsage
		want   string // "approved", "pending", or a reason the denial names
	}
	serving := []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageServerAuth}
	cases := map[string]tc{
		"honest":        {node("w1"), testcsr.Node("w1", []string{"w1"}, []string{w1.IP}), serving, "approved"},
		"other-node-ip": {node("w1"), testcsr.Node("w1", []string{"w1"}, []string{w2.IP}), serving, "IP SAN " + w2.IP},
		"kubernetes":    {node("w1"), testcsr.Node("w1", []string{"w1", "kubernetes.default"}, nil), serving, `DNS SAN "kubernetes.default"`},
		"client-auth":   {node("w1"), testcsr.Node("w1", []string{"w1"}, nil), []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageClientAuth}, `usage "client auth"`},
		"email":         {node("w1"), testcsr.Spec{CN: "system:node:w1", Orgs: []string{"system:nodes"}, DNS: []string{"w1"}, Emails: []string{"ops@example.com"}}, serving, "email SANs"},
		"not-a-node":    {admin, testcsr.Node("w1", []string{"w1"}, []string{w1.IP}), serving, "is not system:node:w1"},
		"untargeted":    {node("w2"), testcsr.Node("w2", []string{"w2"}, []string{w2.IP}), serving, "pending"},
	}
	prefix := "kpcsr-" + time.Now().Format("150405") + "-"
	defer func() {
		for name := range cases {
			_ = admin.CertificatesV1().CertificateSigningRequests().Delete(ctx, prefix+name, metav1.DeleteOptions{})
		}
	}()
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: csr
plays:
  - hosts: w1
    steps:
      - name: approve
        csr-approve: {wait_for: 1, timeout: 30s, interval: 500ms, deny: true}
`
	// a node asking for another node's CN is refused by the API server
	// itself (NodeRestriction); kubeplay's own CN check is unit-tested
	wrongCN, _ := testcsr.PEM(testcsr.Spec{CN: "system:node:w2", Orgs: []string{"system:nodes"}, DNS: []string{"w1"}})
	if _, err := node("w1").CertificatesV1().CertificateSigningRequests().Create(ctx, &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: prefix + "wrong-cn"},
		Spec:       certv1.CertificateSigningRequestSpec{Request: wrongCN, SignerName: "kubernetes.io/kubelet-serving", Usages: serving},
	}, metav1.CreateOptions{}); err == nil {
		t.Fatal("the API server took a node CSR for another node's CN")
	}
	start := time.Now()
	for name, c := range cases {
		req, err := testcsr.PEM(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.client.CertificatesV1().CertificateSigningRequests().Create(ctx, &certv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: prefix + name},
			Spec:       certv1.CertificateSigningRequestSpec{Request: req, SignerName: "kubernetes.io/kubelet-serving", Usages: c.usages},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	// the runs start (by their clock) before the CSRs were created, as when
	// kubelets restart during a run
	runAt := func(o *runner.Options) { o.Kube = kube(t, l); o.Clock = &startedAt{t0: start.Add(-5 * time.Second)} }

	// --check decides nothing
	r := runPlaybook(t, l, src, func(o *runner.Options) { runAt(o); o.Check = true })
	if r.err != nil {
		t.Fatal(r.err)
	}
	state := func() map[string]*certv1.CertificateSigningRequest {
		out := map[string]*certv1.CertificateSigningRequest{}
		for name := range cases {
			c, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, prefix+name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out[name] = c
		}
		return out
	}
	for name, c := range state() {
		if len(c.Status.Conditions) != 0 {
			t.Fatalf("--check decided %s: %+v", name, c.Status.Conditions)
		}
	}

	r = runPlaybook(t, l, src, runAt)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if o := harness.Outcomes(r.rec)["approve@w1"]; o != events.Changed {
		t.Fatalf("outcome %s", o)
	}
	var issued bool
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !issued; time.Sleep(500 * time.Millisecond) {
		issued = len(state()["honest"].Status.Certificate) > 0
	}
	if !issued {
		t.Fatal("the approved CSR was not issued by the controller manager")
	}
	for name, c := range state() {
		var cond *certv1.CertificateSigningRequestCondition
		if len(c.Status.Conditions) > 0 {
			cond = &c.Status.Conditions[0]
		}
		switch want := cases[name].want; want {
		case "approved":
			if cond == nil || cond.Type != certv1.CertificateApproved {
				t.Errorf("%s: want approved, got %+v", name, cond)
			}
		case "pending":
			if cond != nil {
				t.Errorf("%s: want pending (its node is not targeted), got %+v", name, cond)
			}
		default:
			if cond == nil || cond.Type != certv1.CertificateDenied || !strings.Contains(cond.Message, want) {
				t.Errorf("%s: want denied naming %q, got %+v", name, want, cond)
			}
		}
	}

	// by default a CSR created before the run is not considered
	req, _ := testcsr.PEM(testcsr.Node("w1", []string{"w1"}, []string{w1.IP}))
	if _, err := node("w1").CertificatesV1().CertificateSigningRequests().Create(ctx, &certv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: prefix + "stale"},
		Spec:       certv1.CertificateSigningRequestSpec{Request: req, SignerName: "kubernetes.io/kubelet-serving", Usages: serving},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer admin.CertificatesV1().CertificateSigningRequests().Delete(ctx, prefix+"stale", metav1.DeleteOptions{})
	time.Sleep(1100 * time.Millisecond) // creation times have whole seconds
	r = runPlaybook(t, l, strings.Replace(src, "wait_for: 1", "wait_for: 0", 1), func(o *runner.Options) { o.Kube = kube(t, l) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c, _ := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, prefix+"stale", metav1.GetOptions{}); len(c.Status.Conditions) != 0 {
		t.Fatalf("a CSR from before the run was decided: %+v", c.Status.Conditions)
	}
}

// startedAt is the real clock, except that its first reading (the run's
// start) is t0.
type startedAt struct {
	t0   time.Time
	read atomic.Bool
}

func (c *startedAt) Now() time.Time {
	if !c.read.Swap(true) {
		return c.t0
	}
	return time.Now()
}
func (*startedAt) After(d time.Duration) <-chan time.Time { return time.After(d) }
