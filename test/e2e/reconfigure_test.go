package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestBundledKubeadmReconfigure adds a kube-apiserver flag through the
// cluster's configuration: afterwards kubeadm-config holds it and every
// control plane's running kube-apiserver process has it on its command
// line; a second run changes nothing; removing it the same way takes it off
// every process again.
func TestBundledKubeadmReconfigure(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	k := kube(t, l)
	run := func(p map[string]any) result {
		return runPlaybook(t, l, bundled(t, "kubeadm-reconfigure"), func(o *runner.Options) { o.Params, o.Kube = p, k })
	}
	// what each control plane's kube-apiserver process runs with (lab
	// nodes share the PID namespace: a node's own is the one advertising
	// its address)
	procs := func() map[string]string {
		out := map[string]string{}
		all, _ := l.Exec(ctx, "cp1", `for p in $(pgrep -x kube-apiserver); do tr '\0' ' ' < /proc/$p/cmdline; echo; done`)
		for _, n := range []string{"cp1", "cp2", "cp3"} {
			node, _ := l.Node(n)
			for _, line := range strings.Split(all, "\n") {
				if strings.Contains(line, "--advertise-address="+node.IP+" ") {
					out[n] += line + "\n"
				}
			}
		}
		return out
	}
	cc := func() string {
		cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["ClusterConfiguration"]
	}
	add := map[string]any{"component": "kube-apiserver", "extra_args": map[string]any{"audit-log-maxage": "7"}}
	r := run(add)
	t.Cleanup(func() { run(map[string]any{"component": "kube-apiserver", "remove_args": []any{"audit-log-maxage"}}) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if c := cc(); !strings.Contains(c, "name: audit-log-maxage") || !strings.Contains(c, "value: \"7\"") {
		t.Fatalf("kubeadm-config does not hold the flag:\n%s", c)
	}
	for n, cmd := range procs() {
		if strings.Count(cmd, "kube-apiserver") != 1 || !strings.Contains(cmd, "--audit-log-maxage=7") {
			t.Fatalf("%s: the running kube-apiserver must have the flag: %q", n, cmd)
		}
	}
	if r = run(add); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	r = run(map[string]any{"component": "kube-apiserver", "remove_args": []any{"audit-log-maxage"}})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Contains(cc(), "audit-log-maxage") {
		t.Fatal("kubeadm-config still holds the removed flag")
	}
	for n, cmd := range procs() {
		if strings.Count(cmd, "kube-apiserver") != 1 || strings.Contains(cmd, "audit-log-maxage") {
			t.Fatalf("%s: the flag must be gone from the running kube-apiserver: %q", n, cmd)
		}
	}
	for _, n := range []string{"cp1", "cp2", "cp3"} {
		l.Exec(ctx, n, "rm -rf /var/lib/kubeplay/backups")
	}
}

// TestBundledKubeadmReconfigureCertSANs adds a name and an address to the
// API server's certificate: kubeadm-config lists them, every control
// plane's served certificate has them (reissued by kubeadm init phase
// certs apiserver, the old one kept aside), and a second run changes
// nothing.
func TestBundledKubeadmReconfigureCertSANs(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	k := kube(t, l)
	sans := []any{"api.kubeplay-e2e.example", "10.77.0.250"}
	run := func() result {
		return runPlaybook(t, l, bundled(t, "kubeadm-reconfigure"), func(o *runner.Options) {
			apiClients(t, l)(o)
			o.Params = map[string]any{"component": "kube-apiserver", "cert_sans": sans}
		})
	}
	t.Cleanup(func() {
		cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err == nil {
			cc := cm.Data["ClusterConfiguration"]
			for _, s := range sans {
				cc = strings.Replace(cc, "  - "+s.(string)+"\n", "", 1)
			}
			cm.Data["ClusterConfiguration"] = strings.Replace(cc, "  certSANs: []\n", "", 1)
			_, _ = k.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{})
		}
		for _, n := range []string{"cp1", "cp2", "cp3"} {
			l.Exec(ctx, n, "rm -rf /var/lib/kubeplay/backups /etc/kubernetes/pki/apiserver.*.kubeplay-*")
		}
	})
	r := run()
	if r.err != nil {
		t.Fatal(r.err)
	}
	cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["ClusterConfiguration"], "- api.kubeplay-e2e.example") {
		t.Fatalf("kubeadm-config must list the SANs: %v\n%s", err, cm.Data["ClusterConfiguration"])
	}
	for _, n := range []string{"cp1", "cp2", "cp3"} {
		out := mustExec(t, l, n, "echo | openssl s_client -connect 127.0.0.1:6443 2>/dev/null | openssl x509 -noout -ext subjectAltName")
		if !strings.Contains(out, "DNS:api.kubeplay-e2e.example") || !strings.Contains(out, "IP Address:10.77.0.250") || !strings.Contains(out, "DNS:"+n) {
			t.Fatalf("%s serves a certificate without the new names: %s", n, out)
		}
		if old := mustExec(t, l, n, "ls /etc/kubernetes/pki/ | grep -c 'apiserver.crt.kubeplay-' || true"); old != "1" {
			t.Fatalf("%s: the old certificate must be kept aside (%s)", n, old)
		}
	}
	if r = run(); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second run must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
}

// TestBundledKubeadmReconfigureAddons changes kube-proxy's configuration
// and CoreDNS's Corefile: each ConfigMap holds the change, the addon's
// pods were replaced (new pods, all Ready), and a second run changes
// nothing.
func TestBundledKubeadmReconfigureAddons(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	run := func(p map[string]any) result {
		return runPlaybook(t, l, bundled(t, "kubeadm-reconfigure"), func(o *runner.Options) { apiClients(t, l)(o); o.Params = p })
	}
	pods := func(selector string) map[string]bool {
		t.Helper()
		ps, err := k.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil || len(ps.Items) == 0 {
			t.Fatalf("%s pods: %v", selector, err)
		}
		out := map[string]bool{}
		for _, p := range ps.Items {
			out[string(p.UID)] = true
		}
		return out
	}
	data := func(cm, key string) string {
		c, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, cm, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Data[key]
	}
	// the addons as they were, put back through the API at the end (the
	// pods need no second restart)
	restore := func(cm string) {
		c, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, cm, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			now, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, cm, metav1.GetOptions{})
			if err == nil {
				now.Data = c.Data
				_, _ = k.CoreV1().ConfigMaps("kube-system").Update(ctx, now, metav1.UpdateOptions{})
			}
		})
	}
	t.Cleanup(func() {
		_, _ = k.CoreV1().Services("kube-system").Patch(ctx, "kube-dns", types.MergePatchType, []byte(`{"metadata":{"labels":{"kubeplay-e2e":null}}}`), metav1.PatchOptions{})
	})
	for _, tc := range []struct {
		params        map[string]any
		cm, key, want string
		selector      string
	}{
		{map[string]any{"component": "kube-proxy", "kube_proxy": map[string]any{"conntrack": map[string]any{"maxPerCore": 65536}}},
			"kube-proxy", "config.conf", "maxPerCore: 65536", "k8s-app=kube-proxy"},
		{map[string]any{"component": "coredns", "corefile_ops": []any{map[string]any{"regexp": `cache 30\b`, "replace": "cache 45"}},
			"kube_dns_patch": map[string]any{"metadata": map[string]any{"labels": map[string]any{"kubeplay-e2e": "yes"}}}},
			"coredns", "Corefile", "cache 45", "k8s-app=kube-dns"},
	} {
		restore(tc.cm)
		// start from Ready pods, as restart-pods insists (an earlier test
		// may have left a node NotReady long enough for the node
		// controller to mark its pods Ready=False: its kubelet marks them
		// Ready again)
		waitFor(t, 90*time.Second, tc.selector+" pods Ready", func() (bool, string) {
			ps, err := k.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: tc.selector})
			if err != nil {
				return false, err.Error()
			}
			for _, p := range ps.Items {
				ready := false
				for _, c := range p.Status.Conditions {
					ready = ready || c.Type == "Ready" && c.Status == "True"
				}
				if !ready {
					return false, p.Name + " not Ready"
				}
			}
			return true, ""
		})
		before := pods(tc.selector)
		r := run(tc.params)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := data(tc.cm, tc.key); !strings.Contains(got, tc.want) {
			t.Fatalf("%s: %s", tc.cm, got)
		}
		if tc.cm == "coredns" {
			svc, err := k.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
			if err != nil || svc.Labels["kubeplay-e2e"] != "yes" {
				t.Fatalf("the kube-dns Service must be patched: %v", err)
			}
		}
		for uid := range pods(tc.selector) {
			if before[uid] {
				t.Fatalf("%s: a pod from before the change is still there", tc.selector)
			}
		}
		if r = run(tc.params); r.err != nil || r.recap.Totals().Changed != 0 {
			t.Fatalf("%s: a second run must change nothing: %v, %d changed", tc.cm, r.err, r.recap.Totals().Changed)
		}
	}
}
