package playbook

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/internal/input"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/secret"
)

// LoadFile reads and validates a playbook file.
func LoadFile(path string, reg *modules.Registry) (*Playbook, error) {
	data, err := input.ReadFile(path, input.MaxPlaybook)
	if err != nil {
		return nil, fmt.Errorf("%w: read playbook: %w", failure.ErrValidation, err)
	}
	return Load(path, data, reg)
}

// Load parses and validates a playbook. Every problem found is reported in
// one *diag.Error.
func Load(file string, data []byte, reg *modules.Registry) (*Playbook, error) {
	d := &diag.List{File: file}
	data, err := input.YAML(file, data, input.MaxPlaybook)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) {
			d.At(ye.GetToken(), "%s", ye.GetMessage())
			return nil, d.Err()
		}
		d.At(nil, "%v", err)
		return nil, d.Err()
	}
	if len(f.Docs) != 1 {
		d.At(nil, "a playbook file holds exactly one YAML document, found %d", len(f.Docs))
		return nil, d.Err()
	}
	root := ytree.FromAST(f.Docs[0], nil, d)
	l := &loader{d: d, reg: reg, pb: &Playbook{File: file}, dir: fileDir(file)}
	l.load(root)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return l.pb, nil
}

// fileDir is the absolute directory of a playbook file; bundled playbooks
// (named "bundled:NAME.yaml") have none.
func fileDir(file string) string {
	if strings.HasPrefix(file, "bundled:") {
		return ""
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return ""
	}
	return filepath.Dir(abs)
}

type loader struct {
	d   *diag.List
	reg *modules.Registry
	pb  *Playbook
	c   *eval.Compiler
	dir string // the playbook's directory, absolute ("" for a bundled one)
}

var topKeys = []string{"apiVersion", "kind", "name", "description", "params", "vars", "plays"}

func (l *loader) load(root *ytree.Node) {
	if root.Kind != ytree.Map {
		l.d.At(root.Tok, "a playbook must be a mapping with %s", strings.Join(topKeys, ", "))
		return
	}
	l.checkKeys(root, topKeys, "playbook")
	if v := root.Get("apiVersion"); v.String() != APIVersion {
		l.d.At(tokOf(v, root), "apiVersion must be %q", APIVersion)
	}
	if v := root.Get("kind"); v.String() != "Playbook" {
		l.d.At(tokOf(v, root), "kind must be \"Playbook\"")
	}
	l.pb.Name = l.str(root.Get("name"), "name")
	if l.pb.Name == "" {
		l.d.At(root.Tok, "name is required")
	}
	l.pb.Description = l.str(root.Get("description"), "description")

	l.params(root.Get("params"))
	l.pb.Registered = collectRegistered(root.Get("plays"), l.d)
	l.vars(root.Get("vars"))

	env, err := eval.EnvType(l.pb.ParamsType, l.pb.VarsType, l.pb.Registered)
	if err != nil {
		l.d.At(root.Tok, "%v", err)
		return
	}
	l.pb.EnvType = env
	l.c = eval.NewCompiler(env)

	plays := root.Get("plays")
	if plays == nil || plays.Kind != ytree.Seq || len(plays.Items) == 0 {
		l.d.At(tokOf(plays, root), "plays: at least one play is required")
		return
	}
	for i, p := range plays.Items {
		l.pb.Plays = append(l.pb.Plays, l.play(i, p))
	}
}

func tokOf(n, fallback *ytree.Node) *token.Token {
	if n != nil && n.Tok != nil {
		return n.Tok
	}
	return fallback.Tok
}

func (l *loader) checkKeys(n *ytree.Node, allowed []string, what string) {
	for _, kv := range n.Keys {
		if !contains(allowed, kv.Name) {
			l.d.At(kv.Tok, "%s: unknown key %q (allowed: %s)", what, kv.Name, strings.Join(allowed, ", "))
		}
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func (l *loader) str(n *ytree.Node, what string) string {
	if n == nil || n.Kind == ytree.Null {
		return ""
	}
	if s, ok := n.Scalar.(string); ok && n.Kind == ytree.Scalar {
		return s
	}
	l.d.At(n.Tok, "%s: expected a string", what)
	return ""
}

// paramYAML is the declaration of one parameter.
type paramYAML struct {
	Type     string `yaml:"type"`
	Required bool   `yaml:"required"`
	Default  any    `yaml:"default"`
	Pattern  string `yaml:"pattern"`
	Enum     []any  `yaml:"enum"`
	Doc      string `yaml:"doc"`
	Secret   bool   `yaml:"secret"`
}

func (l *loader) params(n *ytree.Node) {
	var fields []eval.Field
	if n != nil && n.Kind != ytree.Null {
		if n.Kind != ytree.Map {
			l.d.At(n.Tok, "params: expected a mapping of name to declaration")
		}
		for _, kv := range n.Keys {
			var py paramYAML
			ytree.Decode(kv.Val, &py, nil, nil, l.d)
			ps := &ParamSpec{Name: kv.Name, Type: ParamType(py.Type), Required: py.Required, Doc: py.Doc, Secret: py.Secret, Tok: kv.Tok}
			if !eval.ValidName(kv.Name) {
				l.d.At(kv.Tok, "param %q: not a valid name", kv.Name)
				continue
			}
			if ps.Type == "" {
				ps.Type = TString
			}
			gt, ok := goType(ps.Type)
			if !ok {
				l.d.At(kv.Tok, "param %q: unknown type %q (string, int, bool, duration, list, map, version)", kv.Name, py.Type)
				continue
			}
			if ps.Secret {
				if ps.Type != TString {
					l.d.At(kv.Tok, "param %q: only string params can be secret", kv.Name)
				}
				gt = reflect.TypeOf(secret.String{})
			}
			if py.Pattern != "" {
				re, err := regexp.Compile(py.Pattern)
				if err != nil {
					l.d.At(kv.Tok, "param %q: pattern: %v", kv.Name, err)
				}
				ps.Pattern = re
			}
			for _, e := range py.Enum {
				v, err := ps.Convert(e)
				if err != nil {
					l.d.At(kv.Tok, "param %q: enum: %v", kv.Name, err)
				}
				ps.Enum = append(ps.Enum, v)
			}
			if py.Default != nil {
				v, err := ps.Convert(py.Default)
				if err == nil {
					err = ps.check(v)
				}
				if err != nil {
					l.d.At(kv.Tok, "param %q: default: %v", kv.Name, err)
				}
				ps.Default = v
				if ps.Required {
					l.d.At(kv.Tok, "param %q: a required param cannot have a default", kv.Name)
				}
			}
			l.pb.Params = append(l.pb.Params, ps)
			fields = append(fields, eval.Field{Name: kv.Name, Type: gt})
		}
	}
	t, err := eval.StructOf(fields)
	if err != nil {
		l.d.At(n.Tok, "params: %v", err)
		t, _ = eval.StructOf(nil)
	}
	l.pb.ParamsType = t
}

func goType(t ParamType) (reflect.Type, bool) {
	switch t {
	case TString, TVersion:
		return reflect.TypeOf(""), true
	case TInt:
		return reflect.TypeOf(0), true
	case TBool:
		return reflect.TypeOf(false), true
	case TDuration:
		return reflect.TypeOf(time.Duration(0)), true
	case TList:
		return reflect.TypeOf([]any{}), true
	case TMap:
		return reflect.TypeOf(map[string]any{}), true
	}
	return nil, false
}

// Convert turns a YAML or command-line value into the param's Go type.
func (ps *ParamSpec) Convert(v any) (any, error) {
	switch ps.Type {
	case TString, TVersion:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case secret.String:
			s = x.Reveal()
		default:
			return nil, fmt.Errorf("expected a string, got %v (%T); quote it", v, v)
		}
		if ps.Type == TVersion {
			if _, err := eval.ParseVersion(s); err != nil {
				return nil, err
			}
		}
		if ps.Secret {
			return secret.New(s), nil
		}
		return s, nil
	case TInt:
		switch x := v.(type) {
		case int64:
			return int(x), nil
		case uint64:
			return int(x), nil
		case int:
			return x, nil
		case string:
			i, err := strconv.Atoi(x)
			if err != nil {
				return nil, fmt.Errorf("expected an integer, got %q", x)
			}
			return i, nil
		}
	case TBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil, fmt.Errorf("expected a bool, got %q", x)
			}
			return b, nil
		}
	case TDuration:
		if s, ok := v.(string); ok {
			return ytree.ParseDuration(s)
		}
	case TList:
		if l, ok := v.([]any); ok {
			return l, nil
		}
		if s, ok := v.(string); ok {
			var out []any
			if err := yaml.Unmarshal([]byte(s), &out); err != nil {
				return nil, fmt.Errorf("expected a list: %w", err)
			}
			return out, nil
		}
	case TMap:
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
		if s, ok := v.(string); ok {
			out := map[string]any{}
			if err := yaml.Unmarshal([]byte(s), &out); err != nil {
				return nil, fmt.Errorf("expected a mapping: %w", err)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("expected %s, got %v (%T)", ps.Type, v, v)
}

// check applies pattern and enum to a converted value.
func (ps *ParamSpec) check(v any) error {
	if ps.Pattern != nil {
		s := fmt.Sprint(v)
		if sv, ok := v.(secret.String); ok {
			s = sv.Reveal()
		}
		if !ps.Pattern.MatchString(s) {
			if ps.Secret {
				return fmt.Errorf("value does not match pattern %s", ps.Pattern)
			}
			return fmt.Errorf("%q does not match pattern %s", s, ps.Pattern)
		}
	}
	if len(ps.Enum) > 0 {
		for _, e := range ps.Enum {
			if reflect.DeepEqual(e, v) {
				return nil
			}
		}
		return fmt.Errorf("%v is not one of %v", v, ps.Enum)
	}
	return nil
}

// ErrParams marks invalid run parameters.
var ErrParams = errors.New("invalid params")

// ResolveParams builds the `params` value from given values (from -e or a
// file), defaults and declarations. Unknown names are errors.
func (pb *Playbook) ResolveParams(given map[string]any) (reflect.Value, error) {
	v := reflect.New(pb.ParamsType).Elem()
	var errs []string
	known := map[string]bool{}
	for _, ps := range pb.Params {
		known[ps.Name] = true
		raw, ok := given[ps.Name]
		var val any
		switch {
		case ok:
			c, err := ps.Convert(raw)
			if err == nil {
				err = ps.check(c)
			}
			if sv, isSecret := c.(secret.String); err == nil && isSecret {
				err = secret.Check(sv.Reveal())
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("param %s: %v", ps.Name, err))
				continue
			}
			val = c
		case ps.Default != nil:
			val = ps.Default
		case ps.Required:
			errs = append(errs, fmt.Sprintf("param %s is required (%s)", ps.Name, ps.Doc))
			continue
		default:
			continue
		}
		if err := eval.SetField(v, ps.Name, val); err != nil {
			errs = append(errs, fmt.Sprintf("param %s: %v", ps.Name, err))
		}
	}
	var unknown []string
	for k := range given {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Sprintf("unknown param %q", k))
	}
	if len(errs) > 0 {
		return v, fmt.Errorf("%w: %s", ErrParams, strings.Join(errs, "; "))
	}
	return v, nil
}

// SecretParams lists the names of secret params.
func (pb *Playbook) SecretParams() []string {
	var out []string
	for _, ps := range pb.Params {
		if ps.Secret {
			out = append(out, ps.Name)
		}
	}
	return out
}

// vars compiles playbook vars in order: each may use params and the vars
// before it.
func (l *loader) vars(n *ytree.Node) {
	var fields []eval.Field
	if n != nil && n.Kind == ytree.Map {
		for _, kv := range n.Keys {
			if !eval.ValidName(kv.Name) {
				l.d.At(kv.Tok, "var %q: not a valid name", kv.Name)
				continue
			}
			partial, err := eval.StructOf(fields)
			if err != nil {
				l.d.At(kv.Tok, "vars: %v", err)
				continue
			}
			env, err := eval.EnvType(l.pb.ParamsType, partial, l.pb.Registered)
			if err != nil {
				l.d.At(kv.Tok, "vars: %v", err)
				continue
			}
			c := eval.NewCompiler(env)
			ytree.CompileTemplates(kv.Val, c.CompileTemplate, l.d)
			l.pb.Vars = append(l.pb.Vars, &Var{Name: kv.Name, Node: kv.Val})
			fields = append(fields, eval.Field{Name: kv.Name, Type: nodeType(kv.Val)})
		}
	} else if n != nil && n.Kind != ytree.Null {
		l.d.At(n.Tok, "vars: expected a mapping")
	}
	t, err := eval.StructOf(fields)
	if err != nil {
		t, _ = eval.StructOf(nil)
	}
	l.pb.VarsType = t
}

// nodeType is the static type of a var's value.
func nodeType(n *ytree.Node) reflect.Type {
	anyT := reflect.TypeOf((*any)(nil)).Elem()
	switch n.Kind {
	case ytree.Template:
		t := n.Tmpl.Type()
		if t.Kind() == reflect.Interface {
			return anyT
		}
		return t
	case ytree.Scalar:
		switch n.Scalar.(type) {
		case string:
			return reflect.TypeOf("")
		case int64, uint64:
			return reflect.TypeOf(0)
		case float64:
			return reflect.TypeOf(0.0)
		case bool:
			return reflect.TypeOf(false)
		}
	case ytree.Map:
		return reflect.TypeOf(map[string]any{})
	case ytree.Seq:
		return reflect.TypeOf([]any{})
	}
	return anyT
}

// collectRegistered finds every `register:` name under plays.
func collectRegistered(n *ytree.Node, d *diag.List) []string {
	seen := map[string]bool{}
	var walk func(*ytree.Node)
	walk = func(n *ytree.Node) {
		if n == nil {
			return
		}
		switch n.Kind {
		case ytree.Map:
			for _, kv := range n.Keys {
				if kv.Name == "register" && kv.Val != nil && kv.Val.Kind == ytree.Scalar {
					name := kv.Val.String()
					switch {
					case !eval.ValidName(name):
						d.At(kv.Val.Tok, "register: %q is not a valid name", name)
					case eval.Reserved(name):
						d.At(kv.Val.Tok, "register: %q is reserved", name)
					default:
						seen[name] = true
					}
				}
				walk(kv.Val)
			}
		case ytree.Seq:
			for _, it := range n.Items {
				walk(it)
			}
		}
	}
	walk(n)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
