package ytree

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/token"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/secret"
)

var (
	durationType = reflect.TypeOf(time.Duration(0))
	exprType     = reflect.TypeOf((*eval.Expr)(nil))
	secretType   = reflect.TypeOf(secret.String{})
)

// Decode decodes n into out, which must be a non-nil pointer. Unknown keys,
// wrong types and malformed values are recorded in d with positions.
//
// With env == nil (load time) templates are left unrendered and their fields
// keep zero values; the rest of the shape is still checked. With an env,
// templates are rendered and their results converted to the field's type.
//
// Fields of type *eval.Expr take bare bool expressions: c compiles them the
// first time and the compiled form is kept in the tree for later decodes.
func Decode(n *Node, out any, env any, c *eval.Compiler, d *diag.List) {
	DecodeIn(n, out, env, c, d, "")
}

// DecodeIn is Decode for a file in directory base: a relative path written
// literally in a field tagged `runner:"path"` (a file on the runner
// machine) is taken relative to base, as Ansible takes files/ relative to
// the playbook. A path that a template renders (from a param, given on the
// command line) stays relative to the working directory.
func DecodeIn(n *Node, out any, env any, c *eval.Compiler, d *diag.List, base string) {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("ytree.Decode: out must be a non-nil pointer")
	}
	dec := decoder{env: env, c: c, d: d, base: base}
	dec.value(n, v.Elem(), "")
}

type decoder struct {
	env any
	c   *eval.Compiler
	d   *diag.List
	// display is set inside a field tagged `secrets:"display"` (debug's
	// msg): a value only shown to the user, where a secret may stand and
	// shows as [REDACTED].
	display bool
	// base is the directory of the file being decoded ("" for none).
	base string
}

// expression compiles (once) a bare bool expression held by n.
func (dc *decoder) expression(n *Node, v reflect.Value, path string) {
	if n.Kind != Expression {
		src, ok := n.Scalar.(string)
		if n.Kind == Template {
			src, ok = "", false
		}
		if n.Kind == Scalar {
			if b, isBool := n.Scalar.(bool); isBool {
				src, ok = strconv.FormatBool(b), true
			}
		}
		if !ok {
			dc.errf(n.Tok, path, "expected a bare expression (no {{ }}), got %s", Describe(n))
			return
		}
		if dc.c == nil {
			dc.errf(n.Tok, path, "expressions are not allowed here")
			return
		}
		e, err := dc.c.CompileBool(src)
		if err != nil {
			dc.errf(n.Tok, path, "%v", err)
			return
		}
		n.Kind, n.Expr, n.Scalar = Expression, e, nil
	}
	v.Set(reflect.ValueOf(n.Expr))
}

func (dc *decoder) errf(tok *token.Token, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	dc.d.At(tok, "%s", msg)
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func (dc *decoder) value(n *Node, v reflect.Value, path string) {
	if n == nil || n.Kind == Null {
		return // zero value; required fields are the params' Validate's job
	}
	if v.Type() == exprType {
		dc.expression(n, v, path)
		return
	}
	if n.Kind == Template {
		if dc.env == nil {
			// at load: a secret refused here now, not after earlier steps ran
			if t := derefType(v.Type()); t != secretType && n.Tmpl.MaySecret() && !(dc.display && t.Kind() == reflect.Interface) {
				dc.errf(n.Tok, path, "%s", secretHere(t))
			}
			return
		}
		out, err := n.Tmpl.Render(dc.env)
		if err != nil {
			dc.errf(n.Tok, path, "%v", err)
			return
		}
		dc.assign(out, v, n.Tok, path)
		return
	}
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		dc.value(n, v.Elem(), path)
		return
	case v.Type() == durationType:
		dc.duration(n, v, path)
		return
	case v.Type() == secretType:
		if s, ok := n.Scalar.(string); ok && n.Kind == Scalar {
			v.Set(reflect.ValueOf(secret.New(s)))
			return
		}
		dc.errf(n.Tok, path, "expected a string, got %s", Describe(n))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		dc.structure(n, v, path)
	case reflect.Map:
		if n.Kind != Map {
			dc.errf(n.Tok, path, "expected a mapping, got %s", Describe(n))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			panic("ytree: only string-keyed maps are supported")
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for _, kv := range n.Keys {
			ev := reflect.New(v.Type().Elem()).Elem()
			dc.value(kv.Val, ev, join(path, kv.Name))
			v.SetMapIndex(reflect.ValueOf(kv.Name).Convert(v.Type().Key()), ev)
		}
	case reflect.Slice:
		if n.Kind != Seq {
			dc.errf(n.Tok, path, "expected a list, got %s", Describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Items), len(n.Items))
		for i, it := range n.Items {
			dc.value(it, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Interface:
		// a free-form value (a YAML value to write, a patch) would carry a
		// secret as the text "[REDACTED]": refused, at load where the type
		// shows it, else when the step runs
		if tok := secretTemplate(n); tok != nil && !dc.display {
			dc.errf(tok, path, "%s", secretHere(v.Type()))
			return
		}
		p, err := n.Plain(dc.env)
		if err != nil {
			dc.errf(n.Tok, path, "%v", err)
			return
		}
		if !dc.display && containsSecret(p) {
			dc.errf(n.Tok, path, "%s", secretHere(v.Type()))
			return
		}
		if p != nil {
			v.Set(reflect.ValueOf(p))
		}
	default:
		if n.Kind != Scalar {
			dc.errf(n.Tok, path, "expected %s, got %s", kindName(v.Type()), Describe(n))
			return
		}
		dc.scalar(n.Scalar, v, n.Tok, path, false)
	}
}

func (dc *decoder) structure(n *Node, v reflect.Value, path string) {
	if n.Kind != Map {
		dc.errf(n.Tok, path, "expected a mapping, got %s", Describe(n))
		return
	}
	fields := StructFields(v.Type())
	if err := defaults(v, fields); err != nil {
		dc.errf(n.Tok, path, "%v", err)
	}
	for _, kv := range n.Keys {
		idx, ok := fields[kv.Name]
		if !ok {
			dc.errf(kv.Tok, path, "unknown key %q (allowed: %s)", kv.Name, strings.Join(sortedKeys(fields), ", "))
			continue
		}
		field := v.Type().FieldByIndex(idx)
		display := dc.display
		dc.display = display || field.Tag.Get("secrets") == "display"
		dc.value(kv.Val, v.FieldByIndex(idx), join(path, kv.Name))
		dc.display = display
		if field.Tag.Get("runner") == "path" && field.Type.Kind() == reflect.String && kv.Val != nil && kv.Val.Kind == Scalar {
			dc.runnerPath(v.FieldByIndex(idx))
		}
	}
}

// Defaults sets each field of the struct out points to from its `default:`
// tag, as decoding does before it reads the keys given: the one place a
// params default is declared. A string field takes the tag as written
// ("0600" stays a string); any other type parses it as YAML.
func Defaults(out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("ytree.Defaults: %T is not a pointer to a struct", out)
	}
	return defaults(v.Elem(), StructFields(v.Elem().Type()))
}

// FillDefaults is Defaults for params built in Go (tests): only the fields
// still zero take their default.
func FillDefaults(out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("ytree.FillDefaults: %T is not a pointer to a struct", out)
	}
	d := reflect.New(v.Elem().Type())
	if err := Defaults(d.Interface()); err != nil {
		return err
	}
	fields := StructFields(v.Elem().Type())
	for _, idx := range fields {
		if f := v.Elem().FieldByIndex(idx); f.IsZero() {
			f.Set(d.Elem().FieldByIndex(idx))
		}
	}
	return nil
}

func defaults(v reflect.Value, fields map[string][]int) error {
	for _, name := range sortedKeys(fields) {
		f := v.Type().FieldByIndex(fields[name])
		tag, ok := f.Tag.Lookup("default")
		if !ok {
			continue
		}
		var n *Node
		if derefType(f.Type).Kind() == reflect.String {
			n = &Node{Kind: Scalar, Scalar: tag}
		} else {
			var plain any
			if err := yaml.Unmarshal([]byte(tag), &plain); err != nil {
				return fmt.Errorf("default of %s: %w", name, err)
			}
			n = FromPlain(plain, nil)
		}
		d := &diag.List{}
		(&decoder{d: d}).value(n, v.FieldByIndex(fields[name]), name)
		if err := d.Err(); err != nil {
			return fmt.Errorf("default of %s: %w", name, err)
		}
	}
	return nil
}

// StructFields maps YAML names to field index paths for a params struct:
// the `yaml` tag's name, or the lower-cased field name. Embedded structs
// tagged `yaml:",inline"` contribute their fields.
func StructFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if f.Anonymous && f.Type.Kind() == reflect.Struct && len(tag) > 1 && tag[1] == "inline" {
			for name, idx := range StructFields(f.Type) {
				out[name] = append([]int{i}, idx...)
			}
			continue
		}
		if !f.IsExported() || tag[0] == "-" {
			continue
		}
		name := tag[0]
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

func sortedKeys(m map[string][]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (dc *decoder) duration(n *Node, v reflect.Value, path string) {
	s, ok := n.Scalar.(string)
	if n.Kind != Scalar || !ok {
		dc.errf(n.Tok, path, "expected a duration string such as \"30s\" or \"5m\", got %s", Describe(n))
		return
	}
	d, err := ParseDuration(s)
	if err != nil {
		dc.errf(n.Tok, path, "%v", err)
		return
	}
	v.SetInt(int64(d))
}

// ParseDuration accepts Go durations plus a "d" (days) suffix.
func ParseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err == nil {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 1h, 7d)", s)
	}
	return d, nil
}

// scalar assigns a YAML scalar. lenient (for rendered templates, which are
// often strings) parses numbers and bools from strings.
func (dc *decoder) scalar(val any, v reflect.Value, tok *token.Token, path string, lenient bool) {
	switch v.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			if !lenient {
				dc.errf(tok, path, "expected a string, got %s (quote it)", describeValue(val))
				return
			}
			s = fmt.Sprint(val)
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok && lenient {
			if s, isStr := val.(string); isStr {
				pb, err := strconv.ParseBool(s)
				b, ok = pb, err == nil
			}
		}
		if !ok {
			dc.errf(tok, path, "expected a bool, got %s", describeValue(val))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := toInt(val, lenient)
		if !ok || v.OverflowInt(i) {
			dc.errf(tok, path, "expected an integer, got %s", describeValue(val))
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := toInt(val, lenient)
		if !ok || i < 0 || v.OverflowUint(uint64(i)) {
			dc.errf(tok, path, "expected a non-negative integer, got %s", describeValue(val))
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		switch x := val.(type) {
		case float64:
			v.SetFloat(x)
		case int64:
			v.SetFloat(float64(x))
		case uint64:
			v.SetFloat(float64(x))
		case int:
			v.SetFloat(float64(x))
		default:
			dc.errf(tok, path, "expected a number, got %s", describeValue(val))
		}
	default:
		dc.errf(tok, path, "cannot decode into %s", v.Type())
	}
}

func toInt(val any, lenient bool) (int64, bool) {
	switch x := val.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if lenient && x == math.Trunc(x) {
			return int64(x), true
		}
	case string:
		if lenient {
			i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			return i, err == nil
		}
	}
	return 0, false
}

// assign converts a rendered template value into v.
func (dc *decoder) assign(val any, v reflect.Value, tok *token.Token, path string) {
	if s, ok := val.(secret.String); ok {
		if dc.display && v.Kind() == reflect.Interface {
			v.Set(reflect.ValueOf(s)) // shown, as [REDACTED]
			return
		}
		if v.Type() != secretType {
			dc.errf(tok, path, "a secret cannot be used here: only secret fields (stdin, environment and the like) take secrets")
			return
		}
		v.Set(reflect.ValueOf(s))
		return
	}
	if val == nil {
		return
	}
	rv := reflect.ValueOf(val)
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		dc.assign(val, v.Elem(), tok, path)
	case rv.Type().AssignableTo(v.Type()) && v.Kind() != reflect.Interface:
		v.Set(rv)
	case v.Type() == durationType:
		if s, ok := val.(string); ok {
			d, err := ParseDuration(s)
			if err != nil {
				dc.errf(tok, path, "%v", err)
				return
			}
			v.SetInt(int64(d))
			return
		}
		dc.errf(tok, path, "expected a duration, got %s", describeValue(val))
	case v.Type() == secretType:
		if s, ok := val.(string); ok {
			v.Set(reflect.ValueOf(secret.New(s)))
			return
		}
		dc.errf(tok, path, "expected a string, got %s", describeValue(val))
	case v.Kind() == reflect.Interface:
		v.Set(rv)
	case v.Kind() == reflect.Struct || v.Kind() == reflect.Map || v.Kind() == reflect.Slice:
		dc.value(FromPlain(val, tok), v, path)
	default:
		dc.scalar(normalize(val), v, tok, path, true)
	}
}

func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// FromPlain builds a tree from plain Go values (all nodes located at tok).
func FromPlain(v any, tok *token.Token) *Node {
	switch x := v.(type) {
	case nil:
		return &Node{Kind: Null, Tok: tok}
	case map[string]any:
		n := &Node{Kind: Map, Tok: tok}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Keys = append(n.Keys, Key{Name: k, Tok: tok, Val: FromPlain(x[k], tok)})
		}
		return n
	case map[any]any:
		// what expr's fromPairs and YAML decoders make: keys become strings
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = val
		}
		return FromPlain(m, tok)
	case []any:
		n := &Node{Kind: Seq, Tok: tok}
		for _, it := range x {
			n.Items = append(n.Items, FromPlain(it, tok))
		}
		return n
	case []string:
		n := &Node{Kind: Seq, Tok: tok}
		for _, it := range x {
			n.Items = append(n.Items, FromPlain(it, tok))
		}
		return n
	default:
		return &Node{Kind: Scalar, Tok: tok, Scalar: normalize(v)}
	}
}

// Describe names what a node holds, for errors ("a sequence", string "x").
func Describe(n *Node) string {
	switch n.Kind {
	case Scalar:
		return describeValue(n.Scalar)
	case Template:
		return "a template"
	default:
		return "a " + n.Kind.String()
	}
}

func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64, uint64, int:
		return fmt.Sprintf("integer %v", x)
	case float64:
		return fmt.Sprintf("number %v", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a bool"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		if t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64 {
			return "an integer"
		}
	}
	return t.String()
}

// runnerPath makes a literal relative path absolute under the file's
// directory. Absolute paths and ~ (the runner's home) stay as written.
func (dc *decoder) runnerPath(v reflect.Value) {
	p := v.String()
	if dc.base == "" || p == "" || filepath.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return
	}
	v.SetString(filepath.Join(dc.base, p))
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func secretHere(t reflect.Type) string {
	if t.Kind() == reflect.Interface {
		return "a secret cannot be used in a free-form value: it would be written as " + secret.Redacted + " (use a module's secret field, such as copy's secret_content)"
	}
	return "a secret cannot be used here: only secret fields (stdin, environment and the like) take secrets"
}

// secretTemplate returns the token of the first template under n whose
// expression is statically a secret.
func secretTemplate(n *Node) *token.Token {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case Template:
		if n.Tmpl.MaySecret() {
			return n.Tok
		}
	case Map:
		for _, kv := range n.Keys {
			if t := secretTemplate(kv.Val); t != nil {
				return t
			}
		}
	case Seq:
		for _, it := range n.Items {
			if t := secretTemplate(it); t != nil {
				return t
			}
		}
	}
	return nil
}

func containsSecret(v any) bool {
	switch x := v.(type) {
	case secret.String:
		return true
	case map[string]any:
		for _, it := range x {
			if containsSecret(it) {
				return true
			}
		}
	case []any:
		for _, it := range x {
			if containsSecret(it) {
				return true
			}
		}
	}
	return false
}
