package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/internal/yamledit"
	"github.com/kubeplay/kubeplay/test/lab"
)

// The real kubeadm judges both shapes of extraArgs that set-arg writes
// (configmap-edit in kubeadm-reconfigure and encryption-at-rest): kubeadm
// config validate, which decodes strictly, accepts a v1beta3 and a v1beta4
// ClusterConfiguration after the same edits, and refuses a v1beta3 one
// with the v1beta4 list in it.
func TestKubeadmValidatesBothExtraArgsShapes(t *testing.T) {
	l := lab.Start(t)
	kubeadm, err := l.KubeBinary("kubeadm")
	if err != nil {
		t.Fatal(err)
	}
	v, err := lab.LoadVersions(l.ScriptsDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	validate := func(name, doc string) (string, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(context.Background(), kubeadm, "config", "validate", "--config", p).CombinedOutput()
		return string(out), err
	}
	ops := []yamledit.Op{
		{Op: "set-arg", Path: "apiServer", Flag: "audit-log-maxage", Value: "30"},
		{Op: "set-arg", Path: "apiServer", Flag: "encryption-provider-config", Value: "/etc/kubernetes/enc/config.yaml"},
		{Op: "set-arg", Path: "controllerManager", Flag: "node-monitor-grace-period", State: "absent"},
		{Op: "set-arg", Path: "scheduler", Flag: "v", Value: 4},
		{Op: "set-arg", Path: "etcd.local", Flag: "quota-backend-bytes", Value: "8589934592"},
	}
	for i := range ops {
		if err := ops[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	// kubeadm refuses a control plane older than its own minor minus one:
	// the fixtures say the lab's version
	version := regexp.MustCompile(`(?m)^kubernetesVersion: .*$`)
	var v1beta3 string
	for _, shape := range []string{"v1beta3", "v1beta4"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "internal", "yamledit", "testdata", "cluster-"+shape+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		src := version.ReplaceAllString(string(b), "kubernetesVersion: v"+v.Kube[0])
		if out, err := validate(shape+"-before.yaml", src); err != nil {
			t.Fatalf("%s as it is: %v\n%s", shape, err, out)
		}
		edited, err := yamledit.Apply([]byte(src), yamledit.Selector{Kind: "ClusterConfiguration"}, ops, false)
		if err != nil {
			t.Fatalf("%s: %v", shape, err)
		}
		if out, err := validate(shape+".yaml", string(edited)); err != nil {
			t.Errorf("kubeadm refuses the %s edited by set-arg: %v\n%s\n%s", shape, err, out, edited)
		}
		if shape == "v1beta3" {
			v1beta3 = src
		}
	}
	mixed := strings.Replace(v1beta3, "    audit-log-maxage: \"7\"\n    authorization-mode: Node,RBAC\n",
		"  - name: audit-log-maxage\n    value: \"7\"\n", 1)
	if mixed == v1beta3 {
		t.Fatal("the v1beta3 fixture changed shape")
	}
	if out, err := validate("mixed.yaml", mixed); err == nil {
		t.Errorf("kubeadm accepted v1beta4's list in a v1beta3 file: the shapes would not matter\n%s", out)
	}
}
