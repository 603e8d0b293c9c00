package upgrade

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

// servedNotAfter reads the certificate the API server at ip serves.
func servedNotAfter(t *testing.T, ip string) time.Time {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ip+":6443", &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("dial %s: %v", ip, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].NotAfter
}

// clientNotAfter reads a kubeconfig's client certificate expiry.
func clientNotAfter(t *testing.T, path string) time.Time {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.AuthInfos {
		blk, _ := pem.Decode(a.ClientCertificateData)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c.NotAfter
	}
	t.Fatal("no user in kubeconfig")
	return time.Time{}
}

func TestBundledKubeadmCertRenew(t *testing.T) {
	exclusive(t)
	l := lab.StartExclusive(t)
	src, err := playbooks.Source("kubeadm-cert-renew")
	if err != nil {
		t.Fatal(err)
	}
	var cps []lab.Node
	before := map[string]time.Time{}
	for _, n := range l.ClusterNodes() {
		if n.Role == lab.RoleControlPlane {
			cps = append(cps, n)
			before[n.Name] = servedNotAfter(t, n.IP)
		}
	}
	// the API stays reachable throughout: at every sample, some API server answers
	var mu sync.Mutex
	samples, outages := 0, 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			up := false
			for _, n := range cps {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", n.IP+":6443", &tls.Config{InsecureSkipVerify: true})
				if err == nil {
					c.Close()
					up = true
					break
				}
			}
			mu.Lock()
			samples++
			if !up {
				outages++
			}
			mu.Unlock()
		}
	}()
	out := filepath.Join(t.TempDir(), "admin.conf")
	start := time.Now()
	r := harness.Run(t, l, "kubeadm-cert-renew.yaml", src, func(o *runner.Options) {
		o.Params = map[string]any{"kubeconfig_out": out}
		o.Kube, _ = l.Client()
	})
	close(stop)
	wg.Wait()
	t.Logf("renewal took %s; %d samples, %d with no API server answering", time.Since(start).Round(time.Second), samples, outages)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if outages > 0 {
		t.Errorf("the API was unreachable in %d of %d samples", outages, samples)
	}
	for _, n := range cps {
		if after := servedNotAfter(t, n.IP); !after.After(before[n.Name]) {
			t.Errorf("%s serves a certificate expiring %s, not later than before (%s)", n.Name, after, before[n.Name])
		}
	}
	// the refreshed kubeconfig works, with a newer client certificate
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig_out: %v %v", st, err)
	}
	if !clientNotAfter(t, out).After(clientNotAfter(t, l.KubeconfigFile())) {
		t.Error("the fetched admin.conf carries no newer client certificate")
	}
	rc, _ := clientcmd.BuildConfigFromFlags("", out)
	if _, err := newDiscovery(t, rc).ServerVersion(); err != nil {
		t.Errorf("the fetched admin.conf does not work: %v", err)
	}

	// nothing expires within 30 days now: a second run with the guard is a no-op
	r = harness.Run(t, l, "kubeadm-cert-renew.yaml", src, func(o *runner.Options) {
		o.Params = map[string]any{"only_if_expiring_within": "30d"}
	})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	oc := harness.Outcomes(r.Rec)
	for _, n := range cps {
		for _, step := range []string{"kubeadm certs renew", "restart the control plane"} {
			if oc[step+"@"+n.Name] != events.Skipped {
				t.Errorf("guarded run: %s on %s was %q, want skipped", step, n.Name, oc[step+"@"+n.Name])
			}
		}
	}
}
