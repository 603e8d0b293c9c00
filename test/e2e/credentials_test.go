package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

// TestKubeadmCredentials: kubeconfig-user writes a working kubeconfig for a
// new user on the node (0600; the API knows it as that user and group), and
// token-create makes a real bootstrap token that a later step can use as a
// secret; neither credential shows up in the run's events.
func TestKubeadmCredentials(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	k := kube(t, l)
	const dest = "/root/e2e-user.conf"
	l.Exec(ctx, "cp1", "rm -f "+dest)
	t.Cleanup(func() { l.Exec(ctx, "cp1", "rm -f "+dest+" /root/e2e-token") })
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: credentials
plays:
  - hosts: cp1
    steps:
      - kubeadm: {action: kubeconfig-user, client_name: e2e-user, org: [e2e-group], validity_period: 2h, dest: ` + dest + `}
        register: user
      - kubeadm: {action: kubeconfig-user, client_name: e2e-user, dest: ` + dest + `}
        register: again
      - kubeadm: {action: token-create, ttl: 10m, description: kubeplay e2e, print_join_command: true}
        register: tok
      - name: hand the token on
        copy: {dest: /root/e2e-token, secret_content: '{{ tok.data.token }}'}
      - assert:
          that:
            - 'user.changed && !again.changed'
            - 'len(tok.data.token_id) == 6 && hasPrefix(tok.data.ca_cert_hash, "sha256:")'
`
	r := runPlaybook(t, l, src, func(o *runner.Options) { o.Kube = k })
	if r.err != nil {
		t.Fatal(r.err)
	}

	// the kubeconfig works and says who it is
	if out, _ := l.Exec(ctx, "cp1", "stat -c %a "+dest); strings.TrimSpace(out) != "600" {
		t.Fatalf("%s mode %q", dest, out)
	}
	conf, err := l.Exec(ctx, "cp1", "cat "+dest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	uc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	who, err := uc.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := who.Status.UserInfo; u.Username != "e2e-user" || !strings.Contains(strings.Join(u.Groups, ","), "e2e-group") {
		t.Fatalf("the new kubeconfig authenticates as %+v", u)
	}

	// the token is real, the copy step got it, and the events never saw it
	var id string
	for _, e := range r.rec.Events() {
		if d, ok := e.Result["data"].(map[string]any); ok && d["token_id"] != nil {
			id = fmt.Sprint(d["token_id"])
		}
	}
	sec, err := k.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bootstrap token %q: %v", id, err)
	}
	defer k.CoreV1().Secrets("kube-system").Delete(ctx, sec.Name, metav1.DeleteOptions{})
	secretHalf := string(sec.Data["token-secret"])
	if got := nodeFile(t, l, "cp1", "/root/e2e-token"); got != id+"."+secretHalf {
		t.Fatalf("the token handed on: %q", got)
	}
	key := ""
	for _, line := range strings.Split(conf, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "client-key-data:" {
			key = f[1]
		}
	}
	for _, e := range r.rec.Events() {
		s := fmt.Sprintf("%+v", e)
		if strings.Contains(s, secretHalf) || key == "" || strings.Contains(s, key[:40]) {
			t.Fatalf("a credential reached the events: %s", s)
		}
	}
}
