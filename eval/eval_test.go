package eval

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/secret"
)

func env(t *testing.T) (*Compiler, any) {
	t.Helper()
	pt, err := StructOf([]Field{{"version", reflect.TypeOf("")}, {"token", reflect.TypeOf(secret.String{})}, {"n", reflect.TypeOf(0)}})
	if err != nil {
		t.Fatal(err)
	}
	vt, _ := StructOf(nil)
	et, err := EnvType(pt, vt, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	p := reflect.New(pt).Elem()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(SetField(p, "version", "1.36.3"))
	must(SetField(p, "token", secret.New("hunter2")))
	must(SetField(p, "n", 3))
	e := reflect.New(et).Elem()
	must(SetField(e, "params", p.Interface()))
	must(SetField(e, "out", Registered{Ran: true, RC: 2, Stdout: "hello"}))
	return NewCompiler(et), e.Interface()
}

func TestTemplates(t *testing.T) {
	c, e := env(t)
	cases := []struct {
		src  string
		want any
	}{
		{"{{ params.n }}", 3},
		{"n={{ params.n }}", "n=3"},
		{"{{ minorOf(params.version) }}", "1.36"},
		{"v{{ nextMinor(params.version) }}.x", "v1.37.x"},
		{"{{ semver('v1.37.2-1.1').patch }}", 2},
		{"{{ versionCompare(params.version, '1.37.0') }}", -1},
		{"{{ regexMatch('^1\\\\.36', params.version) }}", true},
		{"{{ default('', 'fallback') }}", "fallback"},
		{"{{ b64decode(b64('x:y')) }}", "x:y"},
		{"{{ quantity('1Gi') - quantity('512Mi') }}", float64(512 << 20)},
		{"{{ quantity('500m') + quantity('1') }}", 1.5},
		{"{{ fromYaml('a: [1, 2]').a[1] }}", uint64(2)},
		{"{{ out.stdout }}-{{ out.rc }}", "hello-2"},
		{"{{ '}}' }}", "}}"},
	}
	for _, tc := range cases {
		tmpl, err := c.CompileTemplate(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := tmpl.Render(e)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v want %#v", tc.src, got, tc.want)
		}
	}
}

func TestSecretsStaySecret(t *testing.T) {
	c, e := env(t)
	tmpl, err := c.CompileTemplate("Bearer {{ params.token }}")
	if err != nil {
		t.Fatal(err)
	}
	v, err := tmpl.Render(e)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := v.(secret.String)
	if !ok || s.Reveal() != "Bearer hunter2" {
		t.Fatalf("concatenation with a secret must stay a secret: %#v", v)
	}
	if s.String() != secret.Redacted {
		t.Fatal("secret prints its value")
	}
}

func TestCompileErrors(t *testing.T) {
	c, _ := env(t)
	for _, src := range []string{"params.nope", "params.n + 'x'", "nosuch()", "params.version"} {
		if _, err := c.CompileBool(src); err == nil {
			t.Errorf("%q compiled as bool", src)
		}
	}
	for _, src := range []string{"{{ params.n", "{{ }}", "{{ params.nope }}"} {
		if _, err := c.CompileTemplate(src); err == nil {
			t.Errorf("%q compiled", src)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"1.37.2":     {Major: 1, Minor: 37, Patch: 2, Raw: "1.37.2"},
		"v1.36":      {Major: 1, Minor: 36, Raw: "v1.36"},
		"1.37.2-1.1": {Major: 1, Minor: 37, Patch: 2, Pre: "1.1", Raw: "1.37.2-1.1"},
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"1", "1.x.2", "1.2.3.4", ""} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A secret's plaintext never enters an expression: a method call on it is
// refused when the playbook loads, wherever it stands.
func TestSecretMethodsRefusedAtCompile(t *testing.T) {
	env := reflect.TypeOf(struct {
		Tok secret.String `expr:"tok"`
	}{})
	c := NewCompiler(env)
	for _, src := range []string{`tok.Reveal()`, `b64(tok.Reveal())`, `tok.Reveal() == "x"`, `tok.MarshalText()`, `tok.String() != ""`} {
		_, err := c.CompileAny(src)
		if err == nil || !strings.Contains(err.Error(), "of a secret cannot be used") {
			t.Errorf("%s: want refusal, got %v", src, err)
		}
	}
	if _, err := c.CompileTemplate(`token={{ tok.Reveal() }}`); err == nil {
		t.Error("a template revealing a secret compiled")
	}
	// passed on whole, a secret is fine
	if _, err := c.CompileAny(`tok`); err != nil {
		t.Errorf("tok: %v", err)
	}
}
