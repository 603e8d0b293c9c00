package yamledit

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// extraArgs of a ClusterConfiguration component, decoded in either shape
// into name -> values (v1beta4 allows a name more than once).
func extraArgs(t *testing.T, doc, component string) map[string][]string {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	comp, _ := cfg[component].(map[string]any)
	switch args := comp["extraArgs"].(type) {
	case map[string]any:
		for k, v := range args {
			s, ok := v.(string)
			if !ok {
				t.Fatalf("v1beta3 %s.extraArgs.%s is %T, kubeadm wants a string", component, k, v)
			}
			out[k] = append(out[k], s)
		}
	case []any:
		for _, it := range args {
			m := it.(map[string]any)
			s, ok := m["value"].(string)
			if !ok {
				t.Fatalf("v1beta4 %s.extraArgs %v: value is %T, kubeadm wants a string", component, m, m["value"])
			}
			out[m["name"].(string)] = append(out[m["name"].(string)], s)
		}
	case nil:
	default:
		t.Fatalf("%s.extraArgs is %T", component, args)
	}
	return out
}

// set-arg edits a component's extraArgs in the shape the document's
// kubeadm API version has: a mapping in v1beta3, a list in v1beta4.
func TestSetArgInBothKubeadmShapes(t *testing.T) {
	for _, c := range []struct {
		file string
		list bool
	}{{"testdata/cluster-v1beta3.yaml", false}, {"testdata/cluster-v1beta4.yaml", true}} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			out := apply(t, src, Selector{Kind: "ClusterConfiguration"},
				Op{Op: "set-arg", Path: "apiServer", Flag: "audit-log-maxage", Value: "30"},
				Op{Op: "set-arg", Path: "apiServer", Flag: "--encryption-provider-config", Value: "/etc/kubernetes/enc/config.yaml"},
				Op{Op: "set-arg", Path: "controllerManager", Flag: "node-monitor-grace-period", State: "absent"},
				Op{Op: "set-arg", Path: "scheduler", Flag: "v", Value: 4},
				Op{Op: "set-arg", Path: "etcd.local", Flag: "quota-backend-bytes", Value: "8589934592"},
			)
			api := extraArgs(t, out, "apiServer")
			if !reflect.DeepEqual(api["audit-log-maxage"], []string{"30"}) || !reflect.DeepEqual(api["encryption-provider-config"], []string{"/etc/kubernetes/enc/config.yaml"}) {
				t.Errorf("apiServer.extraArgs: %v", api)
			}
			if cm := extraArgs(t, out, "controllerManager"); len(cm) != 0 {
				t.Errorf("controllerManager.extraArgs left: %v", cm)
			}
			if s := extraArgs(t, out, "scheduler"); !reflect.DeepEqual(s["v"], []string{"4"}) {
				t.Errorf("scheduler.extraArgs: %v", s)
			}
			var cfg struct {
				Etcd struct {
					Local map[string]any `yaml:"local"`
				} `yaml:"etcd"`
			}
			_ = yaml.Unmarshal([]byte(out), &cfg)
			_, isList := cfg.Etcd.Local["extraArgs"].([]any)
			if isList != c.list {
				t.Errorf("etcd.local.extraArgs created as a list: %v, want %v:\n%s", isList, c.list, out)
			}
			// in v1beta3, a list anywhere in extraArgs is what kubeadm refuses
			if !c.list && strings.Contains(out, "- name: ") {
				t.Errorf("a v1beta3 document got a v1beta4 list:\n%s", out)
			}
			if !strings.Contains(out, "certSANs:\n  - 10.77.0.11") {
				t.Errorf("untouched lines moved:\n%s", out)
			}
		})
	}
}

func TestSetArgRefusesAnUnknownShape(t *testing.T) {
	for name, src := range map[string]string{
		"no apiVersion":      "kind: ClusterConfiguration\napiServer: {}\n",
		"a future version":   "apiVersion: kubeadm.k8s.io/v1beta9\nkind: ClusterConfiguration\n",
		"extraArgs a string": "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer: {extraArgs: x}\n",
	} {
		op := Op{Op: "set-arg", Path: "apiServer", Flag: "v", Value: "2"}
		if err := op.Validate(); err != nil {
			t.Fatal(err)
		}
		if out, err := Apply([]byte(src), Selector{}, []Op{op}, false); err == nil {
			t.Errorf("%s: applied:\n%s", name, out)
		}
	}
	for _, op := range []Op{{Op: "set-arg", Flag: "v"}, {Op: "set-arg", Path: "apiServer"}, {Op: "set-arg", Path: "apiServer", Flag: "v", State: "gone"}} {
		if err := op.Validate(); err == nil {
			t.Errorf("%+v validated", op)
		}
	}
}
