// Package schema builds the JSON Schema (draft 2020-12) of kubeplay's
// playbook format from the playbook loader's keys and the module registry's
// typed params, so that an editor (yaml-language-server) completes and
// checks playbooks. It describes what the loader accepts; the loader stays
// the judge of what the schema cannot say (expressions, cross-field rules).
package schema

import (
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/secret"
)

// ID names the schema.
const ID = "https://github.com/kubeplay/kubeplay/playbook.schema.json"

// Modules is what the schema needs of the module registry.
type Modules interface {
	Names() []string
	Get(name string) (modules.Module, bool)
}

type obj = map[string]any

// template is a "{{ ... }}" string: any param may be given as one.
var template = obj{"type": "string", "pattern": `\{\{`}

// Playbook returns the schema of a playbook file.
func Playbook(reg Modules) map[string]any {
	defs := obj{
		"param":      param(),
		"play":       play(),
		"steps":      obj{"type": "array", "items": obj{"$ref": "#/$defs/step"}},
		"step":       step(reg),
		"expression": obj{"description": "an expression (expr-lang) over params, vars, host, facts, inventory, run, play and registered results", "type": []any{"string", "boolean"}},
	}
	for _, n := range reg.Names() {
		m, _ := reg.Get(n)
		s := typeSchema(reflect.TypeOf(m.NewParams()))
		s["description"] = m.Doc()
		defs["module."+n] = s
	}
	top := obj{
		"apiVersion":  obj{"const": playbook.APIVersion},
		"kind":        obj{"const": "Playbook"},
		"name":        obj{"type": "string", "description": "the playbook's name"},
		"description": obj{"type": "string"},
		"params":      obj{"type": "object", "description": "typed parameters, given with -e NAME=VALUE", "additionalProperties": obj{"$ref": "#/$defs/param"}},
		"vars":        obj{"type": "object", "description": "values computed from params, in order; each may use those before it"},
		"plays":       obj{"type": "array", "items": obj{"$ref": "#/$defs/play"}, "minItems": 1},
	}
	return obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  ID,
		"title":                "kubeplay playbook",
		"type":                 "object",
		"required":             []any{"apiVersion", "kind", "name", "plays"},
		"properties":           only(top, playbook.TopKeys()),
		"additionalProperties": false,
		"$defs":                defs,
	}
}

// only keeps the properties the loader allows, and fails loudly (a
// panic in the schema test) when the loader allows a key described nowhere.
func only(props obj, allowed []string) obj {
	out := obj{}
	for _, k := range allowed {
		p, ok := props[k]
		if !ok {
			panic("schema: the loader allows key " + strconv.Quote(k) + ", which the schema does not describe")
		}
		out[k] = p
	}
	return out
}

func param() obj {
	types := []any{}
	for _, t := range playbook.ParamTypes() {
		types = append(types, string(t))
	}
	return obj{
		"type": "object",
		"properties": obj{
			"type":     obj{"enum": types},
			"required": obj{"type": "boolean"},
			"default":  obj{},
			"pattern":  obj{"type": "string", "description": "a regular expression a string value must match"},
			"enum":     obj{"type": "array"},
			"doc":      obj{"type": "string"},
			"secret":   obj{"type": "boolean", "description": "never printed, logged, journaled or put on a command line"},
		},
		"additionalProperties": false,
	}
}

func play() obj {
	serial := obj{"anyOf": []any{
		obj{"type": "integer", "minimum": 1},
		obj{"type": "string", "pattern": `^(\d+%|\{\{.*)`},
		obj{"type": "array", "items": obj{"anyOf": []any{obj{"type": "integer", "minimum": 1}, obj{"type": "string", "pattern": `^\d+%$`}}}},
	}}
	props := obj{
		"name":                obj{"type": "string"},
		"hosts":               obj{"type": "string", "description": "a host pattern: hosts, groups, roles (role:control_plane, role:workers, role:etcd, role:nodes), globs, ~regex, [i], !, &"},
		"serial":              serial,
		"max_fail_percentage": obj{"anyOf": []any{obj{"type": "integer", "minimum": 0, "maximum": 100}, template}},
		"steps":               obj{"$ref": "#/$defs/steps"},
		"rescue":              obj{"$ref": "#/$defs/steps"},
		"always":              obj{"$ref": "#/$defs/steps"},
		"handlers":            obj{"$ref": "#/$defs/steps"},
	}
	return obj{"type": "object", "properties": only(props, playbook.PlayKeys()), "required": []any{"hosts", "steps"}, "additionalProperties": false}
}

// step is the common keys, plus exactly one module key.
func step(reg Modules) obj {
	props := obj{}
	for name, t := range playbook.CommonStepKeys() {
		if name == "rollback" {
			props[name] = obj{"$ref": "#/$defs/steps", "description": "steps run, newest first, when this host fails later"}
			continue
		}
		s := typeSchema(t)
		if t == reflect.TypeOf((*eval.Expr)(nil)) {
			s = obj{"$ref": "#/$defs/expression"}
		}
		props[name] = s
	}
	var oneOf []any
	for _, n := range reg.Names() {
		props[n] = obj{"$ref": "#/$defs/module." + n}
		oneOf = append(oneOf, obj{"required": []any{n}})
	}
	return obj{"type": "object", "properties": props, "oneOf": oneOf, "additionalProperties": false}
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(secret.String{})
	exprType     = reflect.TypeOf((*eval.Expr)(nil))
)

// typeSchema is the schema of a module param's Go type; anything that is
// not a string may also be given as a template.
func typeSchema(t reflect.Type) obj {
	s := rawSchema(t)
	if s["type"] == "string" || len(s) == 0 {
		return s
	}
	return obj{"anyOf": []any{s, template}}
}

func rawSchema(t reflect.Type) obj {
	switch t {
	case durationType:
		return obj{"type": "string", "pattern": `^(\{\{.*|[0-9.]+(ns|us|µs|ms|s|m|h|d)([0-9.]+(ns|us|µs|ms|s|m|h))*)$`, "description": "a duration: 30s, 5m, 1h30m"}
	case secretType:
		return obj{"type": "string"}
	case exprType:
		return obj{"type": []any{"string", "boolean"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return rawSchema(t.Elem())
	case reflect.String:
		return obj{"type": "string"}
	case reflect.Bool:
		return obj{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return obj{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return obj{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number"}
	case reflect.Slice:
		return obj{"type": "array", "items": typeSchema(t.Elem())}
	case reflect.Map:
		return obj{"type": "object", "additionalProperties": typeSchema(t.Elem())}
	case reflect.Struct:
		return structSchema(t)
	}
	return obj{} // interface: any value
}

func structSchema(t reflect.Type) obj {
	props := obj{}
	var req []any
	fields := ytree.StructFields(t)
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := t.FieldByIndex(fields[n])
		s := typeSchema(f.Type)
		if d := f.Tag.Get("doc"); d != "" {
			s["description"] = d
		}
		if d, ok := f.Tag.Lookup("default"); ok {
			s["default"] = defaultValue(f.Type, d)
		}
		if f.Tag.Get("required") == "true" {
			req = append(req, n)
		}
		props[n] = s
	}
	s := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		s["required"] = req
	}
	return s
}

// defaultValue types a default tag as the JSON value an editor inserts:
// the tag as written for strings and durations, else its YAML value (as
// the decoder reads it).
func defaultValue(t reflect.Type, d string) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.String || t == durationType {
		return d
	}
	var v any
	if err := yaml.Unmarshal([]byte(d), &v); err != nil {
		return d
	}
	return v
}
