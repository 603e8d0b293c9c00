package tomledit

import (
	"strings"
	"testing"
)

// containerd 1.7's default config, with a second runtime whose options
// also carry SystemdCgroup: only runc's may change.
const containerd = `version = 2
root = "/var/lib/containerd"

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]
        SystemdCgroup = false # kata keeps cgroupfs

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = ""
          SystemdCgroup = false # the default
`

const runc = `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options`

func apply(t *testing.T, src, table string, set map[string]any, del ...string) string {
	t.Helper()
	out, err := Apply([]byte(src), table, set, del)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Apply(out, table, set, del)
	if err != nil || string(again) != string(out) {
		t.Fatalf("a second apply changed the file again (%v):\n%s\n---\n%s", err, out, again)
	}
	return string(out)
}

func TestSetOnlyTouchesTheTable(t *testing.T) {
	out := apply(t, containerd, runc, map[string]any{"SystemdCgroup": true})
	want := strings.Replace(containerd, "          SystemdCgroup = false # the default", "          SystemdCgroup = true # the default", 1)
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	// the header may be written with other quotes and spaces
	if out2 := apply(t, containerd, `plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc. options`, map[string]any{"SystemdCgroup": true}); out2 != want {
		t.Fatalf("same table, other spelling:\n%s", out2)
	}
	// a new key goes after the table's last key, at its indentation
	out = apply(t, containerd, runc, map[string]any{"SystemdCgroup": true, "NoPivotRoot": false, "Root": `C:\x "y"`})
	if !strings.Contains(out, "          SystemdCgroup = true # the default\n          NoPivotRoot = false\n          Root = \"C:\\\\x \\\"y\\\"\"\n") {
		t.Fatalf("added keys:\n%s", out)
	}
	// deleted
	out = apply(t, containerd, runc, nil, "SystemdCgroup")
	if strings.Contains(out, "# the default") || !strings.Contains(out, "# kata keeps cgroupfs") {
		t.Fatalf("delete:\n%s", out)
	}
}

func TestAMissingTableIsAdded(t *testing.T) {
	src := "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause\"\n"
	out := apply(t, src, runc, map[string]any{"SystemdCgroup": true})
	if want := src + "\n[" + runc + "]\n  SystemdCgroup = true\n"; out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	// containerd 2's config version 3 table name, on an empty file
	v3 := `plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options`
	if out := apply(t, "", v3, map[string]any{"SystemdCgroup": true}); out != "\n["+v3+"]\n  SystemdCgroup = true\n" {
		t.Fatalf("empty file:\n%q", out)
	}
	// nothing to delete in a missing table: unchanged
	if out := apply(t, src, runc, nil, "SystemdCgroup"); out != src {
		t.Fatalf("delete in a missing table:\n%s", out)
	}
}

func TestMultilineStringsAreNotHeaders(t *testing.T) {
	src := "a = \"\"\"\n[" + runc + "]\nSystemdCgroup = false\n\"\"\"\n\n[" + runc + "]\n  SystemdCgroup = false\n"
	out := apply(t, src, runc, map[string]any{"SystemdCgroup": true})
	if want := "a = \"\"\"\n[" + runc + "]\nSystemdCgroup = false\n\"\"\"\n\n[" + runc + "]\n  SystemdCgroup = true\n"; out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestRefusals(t *testing.T) {
	bad := map[string]struct {
		src, table string
		set        map[string]any
	}{
		// the key is defined in the parent table as a dotted key: setting it
		// in a new [..options] header would define it twice
		"a dotted key elsewhere": {"[plugins.x.runc]\n  options.SystemdCgroup = false\n", "plugins.x.runc.options", map[string]any{"SystemdCgroup": true}},
		"an inline table":        {"[plugins.x.runc]\n  options = { SystemdCgroup = false }\n", "plugins.x.runc.options", map[string]any{"SystemdCgroup": true}},
		"not TOML":               {"[a\nb = 1\n", "a", map[string]any{"b": 2}},
		"a bad table name":       {"", "a..b", map[string]any{"b": 2}},
		"a value TOML lacks":     {"", "a", map[string]any{"b": []string{"x"}}},
	}
	for name, c := range bad {
		if out, err := Apply([]byte(c.src), c.table, c.set, nil); err == nil {
			t.Errorf("%s: applied:\n%s", name, out)
		}
	}
}

func TestParseKey(t *testing.T) {
	for in, want := range map[string]string{
		`plugins."io.containerd.grpc.v1.cri".containerd`: "plugins|io.containerd.grpc.v1.cri|containerd",
		`a . 'b.c' . d`:  "a|b.c|d",
		`"a\"b"`:         `a"b`,
		`site."x y"`:     "site|x y",
		`plugins.a-b_c9`: "plugins|a-b_c9",
	} {
		got, err := ParseKey(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("%s: %q %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a.", ".a", "a b", `"a`, "a.b c"} {
		if got, err := ParseKey(bad); err == nil {
			t.Errorf("%q parsed as %q", bad, got)
		}
	}
}
