package modules

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CSRApprove approves the kubelet-serving CSRs of the host's node, and only
// those that pass every check an operator would make by hand.
type CSRApprove struct{}

// CSRApproveParams are csr-approve's parameters.
type CSRApproveParams struct {
	WaitFor  int           `yaml:"wait_for" doc:"wait until this many valid CSRs of the node are approved (0: approve what is there now)"`
	Timeout  time.Duration `yaml:"timeout" default:"2m" doc:"how long to wait for them"`
	Interval time.Duration `yaml:"interval" default:"2s" doc:"how often to look"`
	Deny     bool          `yaml:"deny" doc:"deny CSRs of the node that fail a check (default: leave them pending for a person)"`
	All      bool          `yaml:"all" doc:"also consider CSRs created before the run started"`
}

// Validate checks the parameters.
func (p *CSRApproveParams) Validate() error {
	if p.WaitFor < 0 {
		return errors.New("wait_for must not be negative")
	}
	return positive(p.Timeout, p.Interval)
}

func (CSRApprove) Name() string { return "csr-approve" }
func (CSRApprove) Doc() string {
	return "Approve the host's node's pending kubernetes.io/kubelet-serving CSRs, created since the run started, only when all hold: a valid signature; requestor system:node:<node> in group system:nodes; CN = requestor and O = [system:nodes]; usages within digital signature, key encipherment, server auth; no email or URI SANs; DNS and IP SANs within the Node's status.addresses and the host's inventory address. Others are left pending (or denied with deny: true), each with its reason in the result. wait_for waits for the node's CSRs to appear."
}
func (CSRApprove) NewParams() Params { return &CSRApproveParams{} }

// LocalOnly: the step talks to the API only.
func (CSRApprove) LocalOnly() {}

const (
	kubeletServingSigner = "kubernetes.io/kubelet-serving"
	nodeUserPrefix       = "system:node:"
	nodesGroup           = "system:nodes"
)

var allowedServingUsages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageServerAuth}

// csrNode is the node a CSR claims to be for: its requestor, else its CN.
func csrNode(csr *certv1.CertificateSigningRequest) string {
	if n, ok := strings.CutPrefix(csr.Spec.Username, nodeUserPrefix); ok {
		return n
	}
	if req, err := parseCSR(csr.Spec.Request); err == nil {
		if n, ok := strings.CutPrefix(req.Subject.CommonName, nodeUserPrefix); ok {
			return n
		}
	}
	return ""
}

func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("the request is not a PEM CERTIFICATE REQUEST")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}

// verifyServingCSR returns why the CSR must not be approved for node, or
// "" when every check passes. allowed are the node's addresses.
func verifyServingCSR(csr *certv1.CertificateSigningRequest, node string, allowed map[string]bool) string {
	want := nodeUserPrefix + node
	if csr.Spec.Username != want {
		return fmt.Sprintf("requestor %q is not %s", csr.Spec.Username, want)
	}
	if !slices.Contains(csr.Spec.Groups, nodesGroup) {
		return fmt.Sprintf("requestor is not in group %s (groups %v)", nodesGroup, csr.Spec.Groups)
	}
	req, err := parseCSR(csr.Spec.Request)
	if err != nil {
		return err.Error()
	}
	if err := req.CheckSignature(); err != nil {
		return "invalid signature: " + err.Error()
	}
	if req.Subject.CommonName != want {
		return fmt.Sprintf("CN %q is not %s", req.Subject.CommonName, want)
	}
	if len(req.Subject.Organization) != 1 || req.Subject.Organization[0] != nodesGroup {
		return fmt.Sprintf("O %v is not [%s]", req.Subject.Organization, nodesGroup)
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(allowedServingUsages, u) {
			return fmt.Sprintf("usage %q is not allowed for a serving certificate", u)
		}
	}
	if len(req.EmailAddresses) > 0 {
		return fmt.Sprintf("email SANs %v", req.EmailAddresses)
	}
	if len(req.URIs) > 0 {
		return fmt.Sprintf("URI SANs %v", req.URIs)
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return "no DNS or IP SANs"
	}
	for _, d := range req.DNSNames {
		if !allowed[strings.ToLower(d)] {
			return fmt.Sprintf("DNS SAN %q is not an address of node %s", d, node)
		}
	}
	for _, ip := range req.IPAddresses {
		if !allowed[ip.String()] {
			return fmt.Sprintf("IP SAN %s is not an address of node %s", ip, node)
		}
	}
	return ""
}

// nodeAddresses are the names and IPs a node's serving certificate may
// carry: its Node's status.addresses and the host's inventory address.
func nodeAddresses(n *corev1.Node, inventoryAddr string) map[string]bool {
	out := map[string]bool{}
	add := func(a string) {
		if a == "" {
			return
		}
		if ip := net.ParseIP(a); ip != nil {
			out[ip.String()] = true
			return
		}
		out[strings.ToLower(a)] = true
	}
	for _, a := range n.Status.Addresses {
		add(a.Address)
	}
	add(inventoryAddr)
	return out
}

func csrDecided(csr *certv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certv1.CertificateApproved || c.Type == certv1.CertificateDenied || c.Type == certv1.CertificateFailed {
			return true
		}
	}
	return false
}

// csrVerdicts is what one look at the node's CSRs found.
type csrVerdicts struct {
	valid    []string
	rejected map[string]string
}

func (m CSRApprove) look(ctx context.Context, t *Target, p *CSRApproveParams, node string) (csrVerdicts, []*certv1.CertificateSigningRequest, error) {
	v := csrVerdicts{rejected: map[string]string{}}
	n, err := getNode(ctx, t, node)
	if err != nil {
		return v, nil, err
	}
	allowed := nodeAddresses(n, t.Host.Address)
	var list *certv1.CertificateSigningRequestList
	if err := kubeCall(ctx, func(ctx context.Context) (err error) {
		list, err = t.Kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		return err
	}); err != nil {
		return v, nil, fmt.Errorf("list CSRs: %w", err)
	}
	var mine []*certv1.CertificateSigningRequest
	for i := range list.Items {
		csr := &list.Items[i]
		if csr.Spec.SignerName != kubeletServingSigner || csrDecided(csr) || csrNode(csr) != node {
			continue
		}
		if !p.All && !t.RunStart.IsZero() && csr.CreationTimestamp.Time.Before(t.RunStart.Truncate(time.Second)) {
			continue
		}
		if why := verifyServingCSR(csr, node, allowed); why != "" {
			v.rejected[csr.Name] = why
		} else {
			v.valid = append(v.valid, csr.Name)
		}
		mine = append(mine, csr)
	}
	sort.Strings(v.valid)
	return v, mine, nil
}

func (v csrVerdicts) data(approved []string) map[string]any {
	rej := map[string]any{}
	for k, why := range v.rejected {
		rej[k] = why
	}
	return map[string]any{"approved": approved, "rejected": rej}
}

func (v csrVerdicts) rejectedText() string {
	names := make([]string, 0, len(v.rejected))
	for k := range v.rejected {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + ": " + v.rejected[k]
	}
	return strings.Join(parts, "; ")
}

// Check lists what would be approved and refused.
func (m CSRApprove) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	node, err := nodeName(t, "")
	if err != nil {
		return Result{}, err
	}
	v, _, err := m.look(ctx, t, p.(*CSRApproveParams), node)
	if err != nil {
		return Result{}, err
	}
	msg := fmt.Sprintf("would approve %d CSR(s) of %s", len(v.valid), node)
	if len(v.rejected) > 0 {
		msg += "; refused: " + v.rejectedText()
	}
	return Result{Changed: len(v.valid) > 0, Msg: msg, Data: v.data(v.valid)}, nil
}

// Run approves valid CSRs, waiting for wait_for of them.
func (m CSRApprove) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	cp := p.(*CSRApproveParams)
	node, err := nodeName(t, "")
	if err != nil {
		return Result{}, err
	}
	var approved []string
	denied := map[string]bool{}
	var last csrVerdicts
	err = poll(ctx, t.Clock, pollSpec{Timeout: cp.Timeout, Interval: cp.Interval}, func(ctx context.Context) (bool, string, error) {
		v, csrs, err := m.look(ctx, t, cp, node)
		if err != nil {
			return false, "", err
		}
		for k, why := range last.rejected {
			if _, still := v.rejected[k]; !still {
				v.rejected[k] = why // denied earlier in this step
			}
		}
		last = v
		for _, csr := range csrs {
			why, bad := v.rejected[csr.Name]
			switch {
			case !bad:
				err := m.decide(ctx, t, csr, certv1.CertificateApproved, "KubeplayApproved",
					fmt.Sprintf("kubeplay run %s: requestor, subject, usages and SANs match node %s", t.RunID, node))
				switch {
				case errors.Is(err, errDecidedElsewhere):
				case err != nil:
					return false, "", err
				default:
					approved = append(approved, csr.Name)
				}
			case cp.Deny && !denied[csr.Name]:
				err := m.decide(ctx, t, csr, certv1.CertificateDenied, "KubeplayDenied", "kubeplay run "+t.RunID+": "+why)
				if err != nil && !errors.Is(err, errDecidedElsewhere) {
					return false, "", err
				}
				denied[csr.Name] = true
			}
		}
		return len(approved) >= cp.WaitFor, "", nil
	})
	if err != nil {
		return Result{Changed: len(approved) > 0, Data: last.data(approved)}, expired(err, func(nd *NotDone) error {
			msg := fmt.Sprintf("%d of %d expected kubelet-serving CSR(s) of %s approved after %s", len(approved), cp.WaitFor, node, nd.After)
			if len(last.rejected) > 0 {
				msg += "; refused: " + last.rejectedText()
			}
			return errors.New(msg)
		})
	}
	msg := fmt.Sprintf("approved %d CSR(s) of %s", len(approved), node)
	if len(last.rejected) > 0 {
		verb := "left pending"
		if cp.Deny {
			verb = "denied"
		}
		msg += "; " + verb + ": " + last.rejectedText()
	}
	return Result{Changed: len(approved) > 0 || len(denied) > 0, Msg: msg, Data: last.data(approved)}, nil
}

// errDecidedElsewhere: someone else approved or denied the CSR meanwhile.
var errDecidedElsewhere = errors.New("decided by someone else meanwhile")

// decide records an approval or denial on the CSR.
func (CSRApprove) decide(ctx context.Context, t *Target, csr *certv1.CertificateSigningRequest, typ certv1.RequestConditionType, reason, msg string) error {
	csrs := t.Kube.CertificatesV1().CertificateSigningRequests()
	cur := csr
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		c := cur.DeepCopy()
		c.Status.Conditions = append(c.Status.Conditions, certv1.CertificateSigningRequestCondition{
			Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastUpdateTime: metav1.Now(),
		})
		err = kubeCall(ctx, func(ctx context.Context) error {
			_, err := csrs.UpdateApproval(ctx, c.Name, c, metav1.UpdateOptions{})
			return err
		})
		if !apierrors.IsConflict(err) {
			break
		}
		// the CSR changed since it was read: read it again, and leave it
		// alone if someone else decided it meanwhile (its spec, which was
		// checked, cannot change)
		if err = kubeCall(ctx, func(ctx context.Context) (err error) {
			cur, err = csrs.Get(ctx, csr.Name, metav1.GetOptions{})
			return err
		}); err != nil {
			break
		}
		if csrDecided(cur) {
			return errDecidedElsewhere
		}
	}
	if err != nil {
		return fmt.Errorf("%s CSR %s: %w", strings.ToLower(string(typ)), csr.Name, err)
	}
	return nil
}
