// Package eval compiles and runs kubeplay's expressions (expr-lang) against a
// typed environment, so that typos and type errors fail when a playbook is
// loaded rather than halfway through a run.
package eval

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Field is one named member of a generated struct type.
type Field struct {
	Name string
	Type reflect.Type
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidName reports whether name can be used as an expression identifier.
func ValidName(name string) bool { return identRe.MatchString(name) }

// StructOf builds a struct type whose fields are visible to expressions under
// their given names, in the given order. Field order is significant: expr
// compiles member access to field indices, so a type built from a prefix of
// the same fields is index-compatible.
func StructOf(fields []Field) (reflect.Type, error) {
	sf := make([]reflect.StructField, 0, len(fields))
	seen := map[string]bool{}
	for _, f := range fields {
		if !ValidName(f.Name) {
			return nil, fmt.Errorf("%q is not a valid name (letters, digits and _; not starting with a digit)", f.Name)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("duplicate name %q", f.Name)
		}
		seen[f.Name] = true
		sf = append(sf, reflect.StructField{
			Name: "F_" + f.Name,
			Type: f.Type,
			Tag:  reflect.StructTag(fmt.Sprintf(`expr:%q json:%q`, f.Name, f.Name)),
		})
	}
	return reflect.StructOf(sf), nil
}

// SetField assigns val to the field exposed as name in the struct value v,
// converting where the types allow it.
func SetField(v reflect.Value, name string, val any) error {
	f := v.FieldByName("F_" + name)
	if !f.IsValid() {
		return fmt.Errorf("no field %q", name)
	}
	if val == nil {
		f.Set(reflect.Zero(f.Type()))
		return nil
	}
	rv := reflect.ValueOf(val)
	switch {
	case rv.Type().AssignableTo(f.Type()):
		f.Set(rv)
	case rv.Type().ConvertibleTo(f.Type()) && rv.Kind() != reflect.String && f.Kind() != reflect.String:
		f.Set(rv.Convert(f.Type()))
	default:
		return fmt.Errorf("field %q: cannot use %T as %s", name, val, f.Type())
	}
	return nil
}

// GetField reads the field exposed as name.
func GetField(v reflect.Value, name string) (any, bool) {
	f := v.FieldByName("F_" + name)
	if !f.IsValid() {
		return nil, false
	}
	return f.Interface(), true
}

// ToMap converts a generated struct value to a map for display.
func ToMap(v reflect.Value) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		out[strings.TrimPrefix(t.Field(i).Name, "F_")] = v.Field(i).Interface()
	}
	return out
}

// Registered is what `register: NAME` exposes to later expressions.
type Registered struct {
	Ran     bool           `expr:"ran" json:"ran"`
	Changed bool           `expr:"changed" json:"changed"`
	Failed  bool           `expr:"failed" json:"failed"`
	Skipped bool           `expr:"skipped" json:"skipped"`
	RC      int            `expr:"rc" json:"rc"`
	Stdout  string         `expr:"stdout" json:"stdout"`
	Stderr  string         `expr:"stderr" json:"stderr"`
	Msg     string         `expr:"msg" json:"msg"`
	Data    map[string]any `expr:"data" json:"data"`
}

// Host is the `host` object of the environment.
type Host struct {
	Name     string         `expr:"name"`
	Address  string         `expr:"address"`
	NodeName string         `expr:"node_name"` // the host's Kubernetes Node
	Groups   []string       `expr:"groups"`
	Vars     map[string]any `expr:"vars"`
}

// Inventory is the `inventory` object of the environment.
type Inventory struct {
	Groups map[string][]string `expr:"groups"`
	// Roles are the resolved roles' hosts (control_plane, workers, etcd,
	// nodes; empty when a role has none).
	Roles map[string][]string `expr:"roles"`
	Hosts []string            `expr:"hosts"`
}

// PlayInfo is the `play` object of the environment: the play and batch a
// step runs in.
type PlayInfo struct {
	Name  string `expr:"name"`
	Batch int    `expr:"batch"` // 1-based; 1 is the first batch (a canary with serial: 1)
}

// RunInfo is the `run` object of the environment.
type RunInfo struct {
	ID    string `expr:"id"`
	Check bool   `expr:"check"` // --check: modules predict, nothing changes
	Diff  bool   `expr:"diff"`
}

// Top-level environment names, in field order.
const (
	NameParams    = "params"
	NameVars      = "vars"
	NameHost      = "host"
	NameFacts     = "facts"
	NameInventory = "inventory"
	NameRun       = "run"
	NamePlay      = "play"
)

// Reserved reports whether a name is taken by the environment itself.
func Reserved(name string) bool {
	switch name {
	case NameParams, NameVars, NameHost, NameFacts, NameInventory, NameRun, NamePlay:
		return true
	}
	return false
}

// EnvType builds the top-level environment type: params, vars, host, facts,
// inventory, run, then the registered names in the order given.
func EnvType(params, vars reflect.Type, registered []string) (reflect.Type, error) {
	fields := []Field{
		{NameParams, params},
		{NameVars, vars},
		{NameHost, reflect.TypeOf(Host{})},
		{NameFacts, reflect.TypeOf(map[string]any{})},
		{NameInventory, reflect.TypeOf(Inventory{})},
		{NameRun, reflect.TypeOf(RunInfo{})},
		{NamePlay, reflect.TypeOf(PlayInfo{})},
	}
	for _, r := range registered {
		fields = append(fields, Field{r, reflect.TypeOf(Registered{})})
	}
	return StructOf(fields)
}
