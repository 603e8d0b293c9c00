package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// apiClients gives a run the lab's API clients, and the REST config steps
// that address one API server use.
func apiClients(t *testing.T, l *lab.Lab) func(*runner.Options) {
	t.Helper()
	k, d := kube(t, l), dyn(t, l)
	rc, err := clientcmd.BuildConfigFromFlags("", l.KubeconfigFile())
	if err != nil {
		t.Fatal(err)
	}
	return func(o *runner.Options) { o.Kube, o.Dynamic, o.KubeConfig = k, d, rc }
}

// TestBundledEncryptionAtRest runs the three actions of encryption-at-rest
// against the lab's real API servers and etcd:
//   - enable: a Secret created before is stored encrypted (read raw from
//     etcd) and still reads back through the API; every control plane holds
//     the identical 0600 file and runs kube-apiserver with the flag;
//     kubeadm-config holds the flag; no key reaches the run's events; a
//     second run changes nothing; a file lost on one host is put back from
//     the others without restarting anything;
//   - rotate-key: the Secret is stored with a new key, and the file holds
//     only that key;
//   - disable: the Secret is stored as plaintext again, no kube-apiserver
//     has the flag, the files are gone; a second run changes nothing.
func TestBundledEncryptionAtRest(t *testing.T) {
	l := lab.StartExclusive(t)
	ctx := context.Background()
	k := kube(t, l)
	const path = "/etc/kubernetes/enc/encryption-config.yaml"
	cps := []string{"cp1", "cp2", "cp3"}
	run := func(action string) result {
		start := time.Now()
		defer func() { t.Logf("%s: %s", action, time.Since(start).Round(time.Second)) }()
		rr := runPlaybook(t, l, bundled(t, "encryption-at-rest"), func(o *runner.Options) {
			apiClients(t, l)(o)
			o.Params = map[string]any{"action": action}
		})
		return rr
	}
	t.Cleanup(func() {
		if nodeFile(t, l, "cp1", path) != "<absent>" {
			run("disable")
		}
		_ = k.CoreV1().Secrets("default").Delete(ctx, "enc-before", metav1.DeleteOptions{})
		for _, n := range cps {
			l.Exec(ctx, n, "rm -rf /var/lib/kubeplay/backups")
		}
	})
	if _, err := k.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "enc-before"},
		Data:       map[string][]byte{"mykey": []byte("mydata")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cli := etcdClient(t, l, "cp1", "https://127.0.0.1:2379")
	stored := func() string {
		t.Helper()
		r, err := cli.Get(ctx, "/registry/secrets/default/enc-before")
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("raw etcd read: %v", err)
		}
		return string(r.Kvs[0].Value)
	}
	readable := func() {
		t.Helper()
		s, err := k.CoreV1().Secrets("default").Get(ctx, "enc-before", metav1.GetOptions{})
		if err != nil || string(s.Data["mykey"]) != "mydata" {
			t.Fatalf("the Secret must read back through the API: %v", err)
		}
	}
	flags := func() map[string]bool {
		out := map[string]bool{}
		all, _ := l.Exec(ctx, "cp1", `for p in $(pgrep -x kube-apiserver); do tr '\0' ' ' < /proc/$p/cmdline; echo; done`)
		for _, n := range cps {
			node, _ := l.Node(n)
			for _, line := range strings.Split(all, "\n") {
				if strings.Contains(line, "--advertise-address="+node.IP+" ") {
					out[n] = strings.Contains(line, "--encryption-provider-config="+path+" ")
				}
			}
		}
		return out
	}
	keyName := regexp.MustCompile(`k8s:enc:aescbc:v1:(kubeplay-[0-9-]+):`)
	secretRe := regexp.MustCompile(`secret: (\S+)`)

	if !strings.HasPrefix(stored(), "k8s\x00") {
		t.Fatalf("before enable the Secret must be stored as plaintext protobuf: %q", stored()[:10])
	}

	// enable
	r := run("enable")
	if r.err != nil {
		t.Fatal(r.err)
	}
	m := keyName.FindStringSubmatch(stored())
	if m == nil {
		t.Fatalf("after enable the Secret must be stored encrypted: %q", stored()[:30])
	}
	first := m[1]
	readable()
	file := nodeFile(t, l, "cp1", path)
	keys := secretRe.FindAllStringSubmatch(file, -1)
	if len(keys) != 1 || !strings.Contains(file, "name: "+first) {
		t.Fatalf("the file must hold the one key %s:\n%d keys", first, len(keys))
	}
	events, _ := json.Marshal(r.rec.Events())
	if strings.Contains(string(events), keys[0][1]) {
		t.Fatal("the key reached the run's events")
	}
	for _, n := range cps {
		if got := nodeFile(t, l, n, path); got != file {
			t.Fatalf("%s holds another file than cp1", n)
		}
		if mode := mustExec(t, l, n, "stat -c %a "+path); mode != "600" {
			t.Fatalf("%s: the file must be 0600, is %s", n, mode)
		}
	}
	if f := flags(); len(f) != 3 || !f["cp1"] || !f["cp2"] || !f["cp3"] {
		t.Fatalf("every kube-apiserver must run with the flag: %v", f)
	}
	cm, err := k.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["ClusterConfiguration"], "value: "+path) || !strings.Contains(cm.Data["ClusterConfiguration"], "mountPath: /etc/kubernetes/enc") {
		t.Fatalf("kubeadm-config must hold the flag and the volume: %v\n%s", err, cm.Data["ClusterConfiguration"])
	}
	if r = run("enable"); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second enable must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	// a file lost on one host (an interrupted run, a restored machine) is
	// completed from the others; its API server already serves that
	// content, so nothing restarts
	mustExec(t, l, "cp2", "rm -f "+path)
	if r = run("enable"); r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("enable must put back the one file: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
	if got := nodeFile(t, l, "cp2", path); got != file {
		t.Fatal("cp2 must hold cp1's file again")
	}

	// rotate-key
	if r = run("rotate-key"); r.err != nil {
		t.Fatal(r.err)
	}
	m = keyName.FindStringSubmatch(stored())
	if m == nil || m[1] == first {
		t.Fatalf("after rotate-key the Secret must be stored with a new key (was %s): %q", first, stored()[:40])
	}
	readable()
	file = nodeFile(t, l, "cp3", path)
	if n := len(secretRe.FindAllString(file, -1)); n != 1 || !strings.Contains(file, "name: "+m[1]) {
		t.Fatalf("after rotate-key the file must hold only the new key %s (%d keys)", m[1], n)
	}

	// disable
	if r = run("disable"); r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.HasPrefix(stored(), "k8s\x00") {
		t.Fatalf("after disable the Secret must be stored as plaintext: %q", stored()[:30])
	}
	readable()
	if f := flags(); len(f) != 3 || f["cp1"] || f["cp2"] || f["cp3"] {
		t.Fatalf("no kube-apiserver may keep the flag: %v", f)
	}
	for _, n := range cps {
		if got := nodeFile(t, l, n, path); got != "<absent>" {
			t.Fatalf("%s: the file must be gone", n)
		}
	}
	if r = run("disable"); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("a second disable must change nothing: %v, %d changed", r.err, r.recap.Totals().Changed)
	}
}

func mustExec(t *testing.T, l *lab.Lab, node, script string) string {
	t.Helper()
	out, err := l.Exec(context.Background(), node, script)
	if err != nil {
		t.Fatalf("%s: %s: %v", node, script, err)
	}
	return strings.TrimSpace(out)
}
