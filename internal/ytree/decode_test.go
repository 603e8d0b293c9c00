package ytree

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/parser"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/secret"
)

type inner struct {
	Name string `yaml:"name"`
}

type sample struct {
	S     string            `yaml:"s"`
	N     int               `yaml:"n"`
	B     bool              `yaml:"b"`
	D     time.Duration     `yaml:"d"`
	L     []string          `yaml:"l"`
	M     map[string]int    `yaml:"m"`
	In    *inner            `yaml:"in"`
	Sec   secret.String     `yaml:"sec"`
	Any   any               `yaml:"any"`
	Items []inner           `yaml:"items"`
	Env   map[string]string `yaml:"env"`
}

func tree(t *testing.T, src string, c *eval.Compiler) (*Node, *diag.List) {
	t.Helper()
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		t.Fatal(err)
	}
	d := &diag.List{File: "t.yaml"}
	n := FromAST(f.Docs[0], nil, d)
	if c != nil {
		CompileTemplates(n, c.CompileTemplate, d)
	}
	return n, d
}

func compiler(t *testing.T) (*eval.Compiler, any) {
	pt, _ := eval.StructOf([]eval.Field{{Name: "n", Type: reflect.TypeOf(0)}, {Name: "pw", Type: reflect.TypeOf(secret.String{})}})
	vt, _ := eval.StructOf(nil)
	et, err := eval.EnvType(pt, vt, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := reflect.New(pt).Elem()
	_ = eval.SetField(p, "n", 7)
	_ = eval.SetField(p, "pw", secret.New("pw-value"))
	e := reflect.New(et).Elem()
	_ = eval.SetField(e, "params", p.Interface())
	return eval.NewCompiler(et), e.Interface()
}

func TestDecodeStrict(t *testing.T) {
	n, d := tree(t, `
s: hello
n: 3
b: true
d: 90s
l: [a, b]
m: {x: 1}
in: {name: z}
sec: plain-secret
any: {k: [1, 2]}
items: [{name: a}, {nme: b}]
bogus: 1
`, nil)
	var s sample
	Decode(n, &s, nil, nil, d)
	err := d.Err()
	if err == nil || !strings.Contains(err.Error(), `unknown key "nme"`) || !strings.Contains(err.Error(), `unknown key "bogus"`) {
		t.Fatalf("want both unknown keys: %v", err)
	}
	if s.S != "hello" || s.N != 3 || !s.B || s.D != 90*time.Second || len(s.L) != 2 || s.M["x"] != 1 ||
		s.In.Name != "z" || s.Sec.Reveal() != "plain-secret" || s.Items[0].Name != "a" {
		t.Fatalf("decoded %+v", s)
	}
}

func TestDecodeWrongTypes(t *testing.T) {
	n, d := tree(t, "s: 12\nn: x\nb: yes-ish\nd: 5\nl: a\nm: [1]\n", nil)
	var s sample
	Decode(n, &s, nil, nil, d)
	if got := len(d.Diags); got != 6 {
		t.Fatalf("want 6 problems, got %d: %v", got, d.Err())
	}
}

func TestDecodeTemplates(t *testing.T) {
	c, env := compiler(t)
	n, d := tree(t, "n: '{{ params.n }}'\ns: 'x{{ params.n }}'\nd: '{{ params.n }}s'\nsec: 'Bearer {{ params.pw }}'\n", c)
	var load sample
	Decode(n, &load, nil, c, d)
	if d.Err() != nil || load.N != 0 {
		t.Fatalf("load-time decode must leave templates: %+v %v", load, d.Err())
	}
	var s sample
	Decode(n, &s, env, c, d)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if s.N != 7 || s.S != "x7" || s.D != 7*time.Second || s.Sec.Reveal() != "Bearer pw-value" {
		t.Fatalf("%+v", s)
	}

	n, d = tree(t, "s: 'echo {{ params.pw }}'\n", c)
	Decode(n, &s, env, c, d)
	if err := d.Err(); err == nil || !strings.Contains(err.Error(), "a secret cannot be used here") || strings.Contains(err.Error(), "pw-value") {
		t.Fatalf("a secret must not reach a plain string field: %v", err)
	}
}

// A map with interface keys (expr's fromPairs, a YAML decoder's) decodes
// into a string-keyed map field like any mapping.
func TestFromPlainInterfaceKeys(t *testing.T) {
	n := FromPlain(map[any]any{"cpuManagerPolicy": "static", "kubeReserved": map[any]any{"cpu": "500m"}}, nil)
	if n.Kind != Map || len(n.Keys) != 2 || n.Keys[0].Name != "cpuManagerPolicy" || n.Keys[1].Val.Kind != Map || n.Keys[1].Val.Keys[0].Name != "cpu" {
		t.Fatalf("%+v", n)
	}
}

type withDefaults struct {
	Embedded `yaml:",inline"`
	Mode     string        `yaml:"mode" default:"0600"`
	Timeout  time.Duration `yaml:"timeout" default:"5m"`
	Backup   bool          `yaml:"backup" default:"true"`
	Lag      uint64        `yaml:"lag" default:"1000"`
	Res      []string      `yaml:"res" default:"[secrets]"`
	Plain    string        `yaml:"plain"`
	Items    []withItem    `yaml:"items"`
}

type Embedded struct {
	Ns string `yaml:"ns" default:"kube-system"`
}

type withItem struct {
	Op string `yaml:"op" default:"set"`
}

// The decoder applies each field's default: tag before the keys given: a
// string as written, anything else parsed as YAML; a given key, even a
// zero one, wins; nested and inline structs get theirs.
func TestDecodeAppliesDefaults(t *testing.T) {
	n, d := tree(t, "backup: false\ntimeout: 0s\nitems: [{}, {op: delete}]\n", nil)
	var got withDefaults
	Decode(n, &got, nil, nil, d)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	want := withDefaults{Embedded: Embedded{Ns: "kube-system"}, Mode: "0600", Lag: 1000, Res: []string{"secrets"},
		Items: []withItem{{Op: "set"}, {Op: "delete"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	var def withDefaults
	if err := Defaults(&def); err != nil || def.Timeout != 5*time.Minute || !def.Backup || def.Ns != "kube-system" {
		t.Fatalf("Defaults: %+v %v", def, err)
	}
	filled := withDefaults{Mode: "0644"}
	if err := FillDefaults(&filled); err != nil || filled.Mode != "0644" || filled.Lag != 1000 {
		t.Fatalf("FillDefaults keeps what is set and fills the rest: %+v %v", filled, err)
	}
	type bad struct {
		N int `yaml:"n" default:"many"`
	}
	if err := Defaults(&bad{}); err == nil || !strings.Contains(err.Error(), "default of n") {
		t.Fatalf("a default that does not decode is an error: %v", err)
	}
}
