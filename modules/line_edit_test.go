package modules

import (
	"testing"

	"github.com/kubeplay/kubeplay/internal/ytree"
)

func lineParams(t *testing.T, p LineEditParams) *LineEditParams {
	t.Helper()
	p.Path = "/etc/x"
	ytree.FillDefaults(&p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestLineEditLines(t *testing.T) {
	const src = "a=1\n# b=0\nc=3\n"
	v := func(s string) *string { return &s }
	for _, c := range []struct {
		name string
		p    LineEditParams
		want string
	}{
		{"replace last match", LineEditParams{Regexp: `^#? ?b=`, Line: "b=2"}, "a=1\nb=2\nc=3\n"},
		{"present already", LineEditParams{Line: "c=3"}, src},
		{"append at EOF", LineEditParams{Line: "d=4"}, src + "d=4\n"},
		{"no match then insert after", LineEditParams{Regexp: `^d=`, Line: "d=4", InsertAfter: `^a=`}, "a=1\nd=4\n# b=0\nc=3\n"},
		{"insert before", LineEditParams{Line: "d=4", InsertBefore: `^c=`}, "a=1\n# b=0\nd=4\nc=3\n"},
		{"BOF", LineEditParams{Line: "d=4", InsertBefore: "BOF"}, "d=4\n" + src},
		{"absent by regexp", LineEditParams{State: "absent", Regexp: `=`}, ""},
		{"absent by line", LineEditParams{State: "absent", Line: "a=1"}, "# b=0\nc=3\n"},
		{"flag added", LineEditParams{Var: "ARGS", Flag: "v", Value: v("2")}, src + "ARGS=\"--v=2\"\n"},
	} {
		p := lineParams(t, c.p)
		var got string
		if p.Var != "" {
			got, _ = p.editFlag(src)
		} else {
			got, _ = p.editLines(src)
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestLineEditFlags(t *testing.T) {
	const src = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --v=2 --v=3\"\n"
	v := func(s string) *string { return &s }
	for _, c := range []struct {
		name string
		p    LineEditParams
		want string
	}{
		{"set replaces the first and drops repeats", LineEditParams{Var: "KUBELET_KUBEADM_ARGS", Flag: "--v", Value: v("4")},
			"KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --v=4\"\n"},
		{"add", LineEditParams{Var: "KUBELET_KUBEADM_ARGS", Flag: "node-ip", Value: v("10.0.0.1")},
			"KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --v=2 --v=3 --node-ip=10.0.0.1\"\n"},
		{"remove", LineEditParams{Var: "KUBELET_KUBEADM_ARGS", Flag: "v", State: "absent"},
			"KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock\"\n"},
		{"a bare flag", LineEditParams{Var: "KUBELET_KUBEADM_ARGS", Flag: "fail-swap-on"},
			"KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --v=2 --v=3 --fail-swap-on\"\n"},
		{"other variable untouched", LineEditParams{Var: "OTHER", Flag: "v", State: "absent"}, src},
	} {
		got, _ := lineParams(t, c.p).editFlag(src)
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	// the prefix of another flag is not the flag
	got, _ := lineParams(t, LineEditParams{Var: "A", Flag: "v", State: "absent"}).editFlag("A='--vmodule=x --v=1'\n")
	if got != "A='--vmodule=x'\n" {
		t.Errorf("got %q", got)
	}
}

func TestLineEditValidate(t *testing.T) {
	v := "a b"
	for name, p := range map[string]LineEditParams{
		"relative path":   {Path: "etc/x", Line: "a"},
		"no line":         {Path: "/etc/x"},
		"both inserts":    {Path: "/etc/x", Line: "a", InsertAfter: "x", InsertBefore: "y"},
		"bad regexp":      {Path: "/etc/x", Line: "a", Regexp: "("},
		"flag with space": {Path: "/etc/x", Var: "A", Flag: "v", Value: &v},
		"flag sans var":   {Path: "/etc/x", Flag: "v"},
		"var and line":    {Path: "/etc/x", Var: "A", Flag: "v", Line: "x"},
		"bad state":       {Path: "/etc/x", Line: "a", State: "gone"},
	} {
		ytree.FillDefaults(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
