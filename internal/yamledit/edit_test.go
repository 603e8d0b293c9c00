package yamledit

import (
	"github.com/goccy/go-yaml"
	"strings"
	"testing"
)

const kubelet = `# written by kubeadm
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false # keep off
  webhook:
    cacheTTL: 0s
    enabled: true
cgroupDriver: cgroupfs
clusterDNS:
- 10.96.0.10
evictionHard:
  memory.available: 100Mi
kind: KubeletConfiguration
rotateCertificates: true
`

const manifest = `apiVersion: v1
kind: Pod
metadata:
  labels:
    component: kube-apiserver
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=10.0.0.11
    - --audit-log-maxage=7
    image: registry.k8s.io/kube-apiserver:v1.36.3
    name: kube-apiserver
    volumeMounts:
    - mountPath: /etc/ssl/certs
      name: ca-certs
      readOnly: true
  hostNetwork: true
  volumes:
  - hostPath:
      path: /etc/ssl/certs
      type: DirectoryOrCreate
    name: ca-certs
status: {}
`

func apply(t *testing.T, src string, sel Selector, ops ...Op) string {
	t.Helper()
	for i := range ops {
		if err := ops[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := Apply([]byte(src), sel, ops, false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Apply(out, sel, ops, false)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if string(again) != string(out) {
		t.Fatalf("second apply changed the file again:\n%s\n---\n%s", out, again)
	}
	return string(out)
}

// changedLines lists the lines of b that are not in a, and of a not in b.
func changedLines(a, b string) (removed, added []string) {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	in := func(l string, xs []string) bool {
		for _, x := range xs {
			if x == l {
				return true
			}
		}
		return false
	}
	for _, l := range as {
		if !in(l, bs) {
			removed = append(removed, l)
		}
	}
	for _, l := range bs {
		if !in(l, as) {
			added = append(added, l)
		}
	}
	return
}

func expectLines(t *testing.T, before, after string, removed, added []string) {
	t.Helper()
	r, a := changedLines(before, after)
	if strings.Join(r, "\n") != strings.Join(removed, "\n") || strings.Join(a, "\n") != strings.Join(added, "\n") {
		t.Fatalf("removed %q added %q, want removed %q added %q\n%s", r, a, removed, added, after)
	}
}

func TestSetKeepsEverythingElse(t *testing.T) {
	out := apply(t, kubelet, Selector{}, Op{Op: "set", Path: "cgroupDriver", Value: "systemd"})
	expectLines(t, kubelet, out, []string{"cgroupDriver: cgroupfs"}, []string{"cgroupDriver: systemd"})

	out = apply(t, kubelet, Selector{}, Op{Op: "set", Path: "authentication.anonymous.enabled", Value: true})
	expectLines(t, kubelet, out, []string{"    enabled: false # keep off"}, []string{"    enabled: true # keep off"})

	out = apply(t, kubelet, Selector{}, Op{Op: "set", Path: `evictionHard."memory.available"`, Value: "200Mi"})
	expectLines(t, kubelet, out, []string{"  memory.available: 100Mi"}, []string{"  memory.available: 200Mi"})
}

func TestSetCreatesMissingBranches(t *testing.T) {
	out := apply(t, kubelet, Selector{}, Op{Op: "set", Path: "serverTLSBootstrap", Value: true})
	expectLines(t, kubelet, out, nil, []string{"serverTLSBootstrap: true"})
	out = apply(t, kubelet, Selector{}, Op{Op: "set", Path: "authentication.x509.clientCAFile", Value: "/etc/kubernetes/pki/ca.crt"})
	expectLines(t, kubelet, out, nil, []string{"  x509:", "    clientCAFile: /etc/kubernetes/pki/ca.crt"})
	out = apply(t, kubelet, Selector{}, Op{Op: "set", Path: "reservedSystemCPUs", Value: map[string]any{"a": []any{"x", "z"}}})
	expectLines(t, kubelet, out, nil, []string{"reservedSystemCPUs:", "  a:", "  - x", "  - z"})
}

func TestDeleteMergeAppendRemove(t *testing.T) {
	out := apply(t, kubelet, Selector{}, Op{Op: "delete", Path: "authentication.webhook.cacheTTL"})
	expectLines(t, kubelet, out, []string{"    cacheTTL: 0s"}, nil)
	out = apply(t, kubelet, Selector{}, Op{Op: "delete", Path: "no.such.key"})
	if out != kubelet {
		t.Fatal("deleting a missing key changed the file")
	}
	out = apply(t, kubelet, Selector{}, Op{Op: "merge", Path: "authentication", Value: map[string]any{"webhook": map[string]any{"cacheTTL": "2m"}, "x509": map[string]any{"clientCAFile": "/ca"}}})
	expectLines(t, kubelet, out, []string{"    cacheTTL: 0s"}, []string{"    cacheTTL: 2m", "  x509:", "    clientCAFile: /ca"})
	out = apply(t, kubelet, Selector{}, Op{Op: "append", Path: "clusterDNS", Value: "10.96.0.11"})
	expectLines(t, kubelet, out, nil, []string{"- 10.96.0.11"})
	out = apply(t, kubelet, Selector{}, Op{Op: "append", Path: "clusterDNS", Value: "10.96.0.10"})
	if out != kubelet {
		t.Fatal("appending an item already there changed the file")
	}
	out = apply(t, kubelet, Selector{}, Op{Op: "remove_item", Path: "clusterDNS", Value: "10.96.0.10"})
	expectLines(t, kubelet, out, []string{"clusterDNS:", "- 10.96.0.10"}, []string{"clusterDNS: []"})
}

func TestStaticPodHelpers(t *testing.T) {
	out := apply(t, manifest, Selector{Kind: "Pod"}, Op{Op: "set-flag", Container: "kube-apiserver", Flag: "audit-log-maxage", Value: 30})
	expectLines(t, manifest, out, []string{"    - --audit-log-maxage=7"}, []string{"    - --audit-log-maxage=30"})
	out = apply(t, manifest, Selector{Kind: "Pod"}, Op{Op: "set-flag", Container: "kube-apiserver", Flag: "--encryption-provider-config", Value: "/etc/kubernetes/enc/enc.yaml"})
	expectLines(t, manifest, out, nil, []string{"    - --encryption-provider-config=/etc/kubernetes/enc/enc.yaml"})
	out = apply(t, manifest, Selector{Kind: "Pod"}, Op{Op: "set-flag", Container: "kube-apiserver", Flag: "audit-log-maxage", State: "absent"})
	expectLines(t, manifest, out, []string{"    - --audit-log-maxage=7"}, nil)

	out = apply(t, manifest, Selector{}, Op{Op: "add-volume-mount", Container: "kube-apiserver", Name: "enc", MountPath: "/etc/kubernetes/enc", HostPath: "/etc/kubernetes/enc", Type: "DirectoryOrCreate", ReadOnly: true})
	expectLines(t, manifest, out, nil, []string{
		"    - mountPath: /etc/kubernetes/enc", "      name: enc",
		"      path: /etc/kubernetes/enc", "    name: enc"})
	if !strings.HasSuffix(out, "    name: ca-certs\n  - hostPath:\n      path: /etc/kubernetes/enc\n      type: DirectoryOrCreate\n    name: enc\nstatus: {}\n") {
		t.Fatalf("the volume is not the last volume:\n%s", out)
	}
	if !strings.Contains(out, "      name: enc\n      readOnly: true\n  hostNetwork: true") {
		t.Fatalf("the mount is not the last of the container's mounts:\n%s", out)
	}

	if _, err := Apply([]byte(manifest), Selector{}, []Op{{Op: "set-flag", Container: "etcd", Flag: "x", State: "present"}}, false); err == nil || !strings.Contains(err.Error(), `no container "etcd"`) {
		t.Fatalf("missing container: %v", err)
	}
}

func TestDocumentSelection(t *testing.T) {
	multi := "# init config\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.3\n---\n" + kubelet
	out := apply(t, multi, Selector{Kind: "KubeletConfiguration"}, Op{Op: "set", Path: "cgroupDriver", Value: "systemd"})
	expectLines(t, multi, out, []string{"cgroupDriver: cgroupfs"}, []string{"cgroupDriver: systemd"})
	one := 0
	out = apply(t, multi, Selector{Index: &one}, Op{Op: "set", Path: "kubernetesVersion", Value: "v1.37.2"})
	expectLines(t, multi, out, []string{"kubernetesVersion: v1.36.3"}, []string{"kubernetesVersion: v1.37.2"})

	if _, err := Apply([]byte(multi), Selector{}, []Op{{Op: "set", Path: "a", Value: 1}}, false); err == nil || !strings.Contains(err.Error(), "2 documents match") {
		t.Fatalf("ambiguous selector: %v", err)
	}
	if _, err := Apply([]byte(multi), Selector{Kind: "Pod"}, []Op{{Op: "set", Path: "a", Value: 1}}, false); err == nil || !strings.Contains(err.Error(), "no document matches kind Pod") {
		t.Fatalf("no match: %v", err)
	}
	out2, err := Apply(nil, Selector{}, []Op{{Op: "set", Path: "a.b", Value: 1}}, true)
	if err != nil || string(out2) != "a:\n  b: 1\n" {
		t.Fatalf("create: %q %v", out2, err)
	}
}

func TestRefusals(t *testing.T) {
	src := "base: &b\n  x: 1\nuse: *b\n"
	if _, err := Apply([]byte(src), Selector{}, []Op{{Op: "set", Path: "use.x", Value: 2}}, false); err == nil {
		t.Fatal("an edit through an alias was allowed")
	}
	if _, err := Apply([]byte(kubelet), Selector{}, []Op{{Op: "set", Path: "cgroupDriver.x", Value: 2}}, false); err == nil || !strings.Contains(err.Error(), "not a mapping") {
		t.Fatalf("set below a scalar: %v", err)
	}
	for _, bad := range []string{"a..b", "a[", "a[x]", `a."b`, ""} {
		if _, err := parsePath(bad); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
	o := Op{Op: "frobnicate", Path: "a"}
	if err := o.Validate(); err == nil {
		t.Error("unknown op accepted")
	}
}

// An item upserted into a flow sequence ("extraArgs: []", what removing the
// last item leaves) turns it into a block sequence that parses; the rest of
// the document stays as it was.
func TestUpsertIntoFlowSequence(t *testing.T) {
	const cc = "apiServer:\n  certSANs:\n  - 10.0.0.1\n  extraArgs: []\napiVersion: kubeadm.k8s.io/v1beta4\n"
	out := apply(t, cc, Selector{}, Op{Op: "set", Path: "apiServer.extraArgs[name=audit-log-maxage].value", Value: "7"})
	expectLines(t, cc, out, []string{"  extraArgs: []"}, []string{"  extraArgs:", "    - name: audit-log-maxage", "      value: \"7\""})
	out = apply(t, "a:\n  l: [{name: x, value: \"1\"}]\n", Selector{}, Op{Op: "set", Path: "a.l[name=x].value", Value: "2"})
	if !strings.Contains(out, "value: \"2\"") || strings.Contains(out, "\"1\"") {
		t.Fatalf("an item of a flow sequence: %s", out)
	}
	// and back: deleting the only item leaves a valid document
	out = apply(t, out, Selector{}, Op{Op: "delete", Path: "a.l[name=x]"})
	var doc struct {
		A struct {
			L []any `yaml:"l"`
		} `yaml:"a"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil || doc.A.L == nil || len(doc.A.L) != 0 {
		t.Fatalf("after delete, an empty list: %v %#v\n%s", err, doc, out)
	}
}

// Two shapes the edits of kubeadm's ClusterConfiguration meet: the last key
// of a block mapping deleted (it becomes "{}", and the file still parses),
// and a nested value set into a flow mapping such as "scheduler: {}" (block
// content cannot go inside braces: the mapping is rendered again, in block
// style). Both failed the edit with "the edited file does not parse".
func TestEditsThatEmptyOrFillAMapping(t *testing.T) {
	src := "a: 1 # one\ncm:\n  extraArgs:\n    k: v\nsched: {}\nb: 2\n"
	out := apply(t, src, Selector{}, Op{Op: "delete", Path: "cm.extraArgs.k"})
	if want := "a: 1 # one\ncm:\n  extraArgs: {}\nsched: {}\nb: 2\n"; out != want {
		t.Errorf("delete the last key:\n%s\nwant:\n%s", out, want)
	}
	out = apply(t, src, Selector{}, Op{Op: "set", Path: "sched.extraArgs", Value: []any{map[string]any{"name": "v", "value": "4"}}})
	if want := "a: 1 # one\ncm:\n  extraArgs:\n    k: v\nsched:\n  extraArgs:\n  - name: v\n    value: \"4\"\nb: 2\n"; out != want {
		t.Errorf("set into a flow mapping:\n%s\nwant:\n%s", out, want)
	}
}
