package modules

import (
	"context"
	"errors"
	"fmt"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/secret"
)

// fakeNode plays a node for kubeadm: it answers the state probe from its
// fields and "runs" kubeadm by changing them.
type fakeNode struct {
	kubeadm     string
	images      []string
	fingerprint string
	ran         [][]string
	upgradeTo   string // what a kubeadm upgrade run does to the images
	rc          int
	stdout      string
}

func (f *fakeNode) Exec(_ context.Context, c Cmd) (ExecResult, error) {
	if len(c.Argv) > 2 && c.Argv[2] == kubeadmStateScript {
		var b strings.Builder
		b.WriteString("kubeadm=" + f.kubeadm + "\n")
		for _, i := range f.images {
			b.WriteString("image=" + i + "\n")
		}
		b.WriteString("fingerprint=" + f.fingerprint + "\n")
		return ExecResult{Stdout: b.String()}, nil
	}
	f.ran = append(f.ran, c.Argv)
	if f.rc == 0 && f.upgradeTo != "" {
		for i, img := range f.images {
			f.images[i] = img[:strings.LastIndex(img, ":")+1] + f.upgradeTo
		}
		f.fingerprint += "'"
	}
	return ExecResult{Stdout: f.stdout, RC: f.rc}, nil
}

func cpImages(v string) []string {
	return []string{"registry.k8s.io/kube-apiserver:" + v, "registry.k8s.io/kube-controller-manager:" + v, "registry.k8s.io/kube-scheduler:" + v}
}

func kubeadmParams(t *testing.T, p KubeadmParams) *KubeadmParams {
	t.Helper()
	ytree.FillDefaults(&p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestKubeadmApply(t *testing.T) {
	ctx := context.Background()
	node := &fakeNode{kubeadm: "v1.37.2", images: cpImages("v1.36.3"), fingerprint: "a", upgradeTo: "v1.37.2",
		stdout: "[upgrade] Moving new manifest ... backing up old manifest to \"/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-11-26-20-47-27/kube-apiserver.yaml\"\n[upgrade] SUCCESS! A control plane node of your cluster was upgraded to \"v1.37.2\".\n"}
	tg := &Target{Host: HostInfo{Name: "cp1"}, Conn: node, Clock: RealClock{}}
	p := kubeadmParams(t, KubeadmParams{Action: "upgrade-apply", Version: "1.37.2", IgnorePreflightErrors: []string{"ImagePull"}})

	chk, err := Kubeadm{}.Check(ctx, tg, p)
	if err != nil || !chk.Changed || len(node.ran) != 0 {
		t.Fatalf("check must predict without running: %+v %v %v", chk, err, node.ran)
	}
	res, err := Kubeadm{}.Run(ctx, tg, p)
	if err != nil || !res.Changed {
		t.Fatalf("apply: %+v %v", res, err)
	}
	want := "kubeadm upgrade apply v1.37.2 --yes --ignore-preflight-errors=ImagePull"
	if got := strings.Join(node.ran[0], " "); got != want {
		t.Fatalf("argv %q, want %q", got, want)
	}
	if b := res.Data["backups"].([]string); len(b) != 1 || b[0] != "/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-11-26-20-47-27" {
		t.Fatalf("backups %v", b)
	}
	// at the version: nothing runs, unless forced
	res, err = Kubeadm{}.Run(ctx, tg, p)
	if err != nil || res.Changed || len(node.ran) != 1 {
		t.Fatalf("second apply must be a no-op: %+v %v", res, err)
	}
	p.Force = true
	if _, err := (Kubeadm{}).Run(ctx, tg, p); err != nil || len(node.ran) != 2 || node.ran[1][len(node.ran[1])-2] != "--force" {
		t.Fatalf("forced apply: %v %v", err, node.ran)
	}
}

func TestKubeadmApplyRefusals(t *testing.T) {
	ctx := context.Background()
	// the wrong kubeadm installed: refused before running anything
	node := &fakeNode{kubeadm: "v1.36.3", images: cpImages("v1.36.3"), fingerprint: "a"}
	tg := &Target{Host: HostInfo{Name: "cp1"}, Conn: node, Clock: RealClock{}}
	_, err := Kubeadm{}.Run(ctx, tg, kubeadmParams(t, KubeadmParams{Action: "upgrade-apply", Version: "v1.37.2"}))
	if !errors.Is(err, ErrKubeadm) || !strings.Contains(err.Error(), "needs kubeadm v1.37.2 installed first") || len(node.ran) != 0 {
		t.Fatalf("want a refusal before running: %v %v", err, node.ran)
	}
	// exit 0 without SUCCESS is not success
	node = &fakeNode{kubeadm: "v1.37.2", images: cpImages("v1.36.3"), fingerprint: "a", stdout: "something else"}
	tg.Conn = node
	if _, err := (Kubeadm{}).Run(ctx, tg, kubeadmParams(t, KubeadmParams{Action: "upgrade-apply", Version: "1.37.2"})); !errors.Is(err, ErrKubeadm) {
		t.Fatalf("want ErrKubeadm without SUCCESS: %v", err)
	}
	// a failing kubeadm names its exit code
	node = &fakeNode{kubeadm: "v1.37.2", images: cpImages("v1.36.3"), fingerprint: "a", rc: 1, stdout: "[ERROR CoreDNSUnsupportedPlugins]"}
	tg.Conn = node
	if _, err := (Kubeadm{}).Run(ctx, tg, kubeadmParams(t, KubeadmParams{Action: "upgrade-node"})); !errors.Is(err, ErrKubeadm) || !strings.Contains(err.Error(), "exit code 1") {
		t.Fatalf("want ErrKubeadm with the exit code: %v", err)
	}
}

func TestKubeadmNodeOnAWorkerReportsRealChange(t *testing.T) {
	ctx := context.Background()
	// a worker has no manifests; changed follows the fingerprint
	node := &fakeNode{kubeadm: "v1.37.2", fingerprint: "same", stdout: "[upgrade] The configuration for this node was successfully upgraded!"}
	tg := &Target{Host: HostInfo{Name: "w1"}, Conn: node, Clock: RealClock{}}
	res, err := Kubeadm{}.Run(ctx, tg, kubeadmParams(t, KubeadmParams{Action: "upgrade-node", Version: "1.37.2"}))
	if err != nil || res.Changed || len(node.ran) != 1 {
		t.Fatalf("unchanged files must report unchanged: %+v %v", res, err)
	}
	node.upgradeTo = "x"
	noEtcd := kubeadmParams(t, KubeadmParams{Action: "upgrade-node", Version: "1.37.2"})
	noEtcd.EtcdUpgrade, noEtcd.CertificateRenewal = false, false
	res, err = Kubeadm{}.Run(ctx, tg, noEtcd)
	if err != nil || !res.Changed || strings.Join(node.ran[1], " ") != "kubeadm upgrade node --etcd-upgrade=false --certificate-renewal=false" {
		t.Fatalf("changed files must report changed: %+v %v %v", res, err, node.ran)
	}
}

func TestKubeadmParams(t *testing.T) {
	for _, p := range []KubeadmParams{
		{Action: "init"},
		{Action: "upgrade-apply"},
		{Action: "upgrade-apply", Version: "latest"},
		{Action: "upgrade-node", Force: true},
		{Action: "upgrade-node", IgnorePreflightErrors: []string{"all;rm -rf /"}},
		{Action: "kubeconfig-user", ClientName: "alice"},
		{Action: "kubeconfig-user", ClientName: "alice", Dest: "alice.conf"},
		{Action: "kubeconfig-user", ClientName: "alice; rm", Dest: "/root/alice.conf"},
		{Action: "kubeconfig-user", ClientName: "alice", Dest: "/root/alice.conf", TTL: time.Hour},
		{Action: "token-create", ClientName: "alice"},
		{Action: "token-create", Description: "two\nlines"},
		{Action: "upgrade-node", PrintJoinCommand: true},
	} {
		ytree.FillDefaults(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%+v must be refused", p)
		}
	}
}

func TestKubeadmCertsRenew(t *testing.T) {
	node := &fakeNode{kubeadm: "v1.36.3", images: cpImages("v1.36.3"), fingerprint: "a", upgradeTo: "v1.36.3"}
	tg := &Target{Host: HostInfo{Name: "cp1"}, Conn: node, Clock: RealClock{}}
	res, err := Kubeadm{}.Run(context.Background(), tg, kubeadmParams(t, KubeadmParams{Action: "certs-renew"}))
	if err != nil || !res.Changed || strings.Join(node.ran[0], " ") != "kubeadm certs renew all" {
		t.Fatalf("%+v %v %v", res, err, node.ran)
	}
	_, err = Kubeadm{}.Run(context.Background(), tg, kubeadmParams(t, KubeadmParams{Action: "certs-renew", Certs: []string{"apiserver", "admin.conf"}}))
	if err != nil || strings.Join(node.ran[1], " ") != "kubeadm certs renew apiserver admin.conf" {
		t.Fatalf("%v %v", err, node.ran)
	}
	if err := (&KubeadmParams{Action: "upgrade-node", Certs: []string{"all"}}).Validate(); err == nil {
		t.Fatal("certs outside certs-renew must be refused")
	}
}

// token-create registers the token and the join command as secrets (they
// print redacted, in JSON too) and the token ID and CA hash as plain data;
// stdout is not kept.
func TestKubeadmTokenCreate(t *testing.T) {
	const tok = "abcdef.0123456789abcdef"
	hash := "sha256:" + strings.Repeat("ab", 32)
	n := &fakeNode{stdout: "kubeadm join 10.0.0.1:6443 --token " + tok + " --discovery-token-ca-cert-hash " + hash + " \n"}
	p := kubeadmParams(t, KubeadmParams{Action: "token-create", TTL: 2 * time.Hour, Description: "node add", PrintJoinCommand: true})
	res, err := Kubeadm{}.Run(context.Background(), &Target{Conn: n}, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(n.ran[0], " "); got != "kubeadm token create --ttl 2h0m0s --description node add --print-join-command" {
		t.Fatalf("argv %q", got)
	}
	if s, ok := res.Data["token"].(secret.String); !ok || s.Reveal() != tok {
		t.Fatalf("token: %#v", res.Data["token"])
	}
	if res.Data["token_id"] != "abcdef" || res.Data["ca_cert_hash"] != hash {
		t.Fatalf("data %v", res.Data)
	}
	shown := fmt.Sprint(res.Data) + asDataString(res.Data) + res.Msg + res.Stdout
	if strings.Contains(shown, "0123456789abcdef") {
		t.Fatalf("the token's secret half is shown: %s", shown)
	}
	n = &fakeNode{stdout: "no token here\n"}
	if _, err := (Kubeadm{}).Run(context.Background(), &Target{Conn: n}, kubeadmParams(t, KubeadmParams{Action: "token-create"})); !errors.Is(err, ErrKubeadm) {
		t.Fatalf("output without a token: %v", err)
	}
}

func asDataString(m map[string]any) string { return fmt.Sprint(asData(m)) }
