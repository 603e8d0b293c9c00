package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Bounds on what one expression may build. expr's own memory budget
// counts the elements its builtins allocate, not the bytes of strings, and
// not what functions outside the VM make; these close that gap, so that a
// hostile expression fails with an error in fixed memory and time instead
// of exhausting the runner (a string doubled 40 times, a 2^30-leaf tree
// made of shared arrays and then printed).
const (
	// MaxValueBytes bounds one string an expression builds.
	MaxValueBytes = 1 << 20
	// MaxValueNodes bounds the values (elements, keys, leaves) a value is
	// printed, serialised or flattened from.
	MaxValueNodes = 100_000
)

// ErrTooBig is an expression value over MaxValueBytes or MaxValueNodes.
var ErrTooBig = errors.New("expression value too big")

// checkSize fails when v would print to more than MaxValueBytes or
// holds more than MaxValueNodes values. It walks shared subtrees each time
// they occur (as printing would), but stops at the first bound.
func checkSize(v any) error {
	m := meter{}
	m.walk(reflect.ValueOf(v))
	return m.err
}

type meter struct {
	nodes, bytes int
	err          error
}

func (m *meter) add(nodes, bytes int) bool {
	m.nodes += nodes
	m.bytes += bytes
	switch {
	case m.nodes > MaxValueNodes:
		m.err = fmt.Errorf("%w: more than %d values", ErrTooBig, MaxValueNodes)
	case m.bytes > MaxValueBytes:
		m.err = fmt.Errorf("%w: more than %d bytes", ErrTooBig, MaxValueBytes)
	}
	return m.err == nil
}

func (m *meter) walk(v reflect.Value) {
	if m.err != nil || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			m.walk(v.Elem())
		}
	case reflect.String:
		m.add(1, v.Len())
	case reflect.Slice, reflect.Array:
		if !m.add(1, 2) {
			return
		}
		for i := 0; i < v.Len() && m.err == nil; i++ {
			m.walk(v.Index(i))
		}
	case reflect.Map:
		if !m.add(1, 2) {
			return
		}
		it := v.MapRange()
		for it.Next() && m.err == nil {
			m.walk(it.Key())
			m.walk(it.Value())
		}
	case reflect.Struct:
		if !m.add(1, 2) {
			return
		}
		for i := 0; i < v.NumField() && m.err == nil; i++ {
			if v.Type().Field(i).IsExported() {
				m.walk(v.Field(i))
			}
		}
	default:
		m.add(1, 8)
	}
}

// boundedFunctions replace the builtins whose output can outgrow their
// input many times over, with the same names and results, bounded.
func boundedFunctions() []expr.Option {
	str := func(v any) error {
		if s, ok := v.(string); ok && len(s) > MaxValueBytes {
			return fmt.Errorf("%w: a string of %d bytes", ErrTooBig, len(s))
		}
		return nil
	}
	return []expr.Option{
		expr.Function("repeat", func(p ...any) (any, error) {
			s, n := p[0].(string), p[1].(int)
			if n < 0 {
				return nil, fmt.Errorf("repeat: negative count %d", n)
			}
			if n > 0 && len(s) > MaxValueBytes/n {
				return nil, fmt.Errorf("%w: repeat of %d bytes %d times", ErrTooBig, len(s), n)
			}
			return strings.Repeat(s, n), nil
		}, new(func(string, int) string)),
		expr.Function("replace", func(p ...any) (any, error) {
			s, old, repl := p[0].(string), p[1].(string), p[2].(string)
			n := strings.Count(s, old)
			if n > 0 && len(repl) > len(old) && len(s)+n*(len(repl)-len(old)) > MaxValueBytes {
				return nil, fmt.Errorf("%w: replace would make more than %d bytes", ErrTooBig, MaxValueBytes)
			}
			return strings.ReplaceAll(s, old, repl), nil
		}, new(func(string, string, string) string)),
		expr.Function("join", func(p ...any) (any, error) {
			if err := checkSize(p); err != nil {
				return nil, err
			}
			sep := ""
			if len(p) == 2 {
				sep = p[1].(string)
			}
			v := reflect.ValueOf(p[0])
			if v.Kind() != reflect.Slice {
				return nil, fmt.Errorf("join: want a list, got %T", p[0])
			}
			parts := make([]string, v.Len())
			for i := range parts {
				s, ok := v.Index(i).Interface().(string)
				if !ok {
					return nil, fmt.Errorf("join: item %d is %T, not a string", i, v.Index(i).Interface())
				}
				parts[i] = s
			}
			if v.Len() > 0 && len(sep) > MaxValueBytes/v.Len() {
				return nil, fmt.Errorf("%w: join separators", ErrTooBig)
			}
			out := strings.Join(parts, sep)
			return out, str(out)
		}, new(func([]any) string), new(func([]any, string) string), new(func([]string) string), new(func([]string, string) string)),
		expr.Function("toJSON", func(p ...any) (any, error) {
			if err := checkSize(p[0]); err != nil {
				return nil, err
			}
			b, err := json.MarshalIndent(p[0], "", "  ")
			return string(b), err
		}, new(func(any) string)),
		expr.Function("string", func(p ...any) (any, error) {
			if err := checkSize(p[0]); err != nil {
				return nil, err
			}
			return fmt.Sprintf("%v", p[0]), nil
		}, new(func(any) string)),
		expr.Function("flatten", func(p ...any) (any, error) {
			if err := checkSize(p[0]); err != nil {
				return nil, err
			}
			var out []any
			var flat func(v reflect.Value)
			flat = func(v reflect.Value) {
				for v.Kind() == reflect.Interface && !v.IsNil() {
					v = v.Elem()
				}
				if v.Kind() == reflect.Slice || v.Kind() == reflect.Array {
					for i := 0; i < v.Len(); i++ {
						flat(v.Index(i))
					}
					return
				}
				out = append(out, v.Interface())
			}
			v := reflect.ValueOf(p[0])
			if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
				return nil, fmt.Errorf("flatten: want a list, got %T", p[0])
			}
			flat(v)
			return out, nil
		}, new(func(any) []any)),
		// + on anything but numbers goes through these (boundedAdd)
		expr.Function(concatFunc, func(p ...any) (any, error) {
			a, b := p[0].(string), p[1].(string)
			if len(a)+len(b) > MaxValueBytes {
				return nil, fmt.Errorf("%w: a string of %d bytes", ErrTooBig, len(a)+len(b))
			}
			return a + b, nil
		}, new(func(string, string) string)),
		expr.Function(addFunc, func(p ...any) (out any, err error) {
			if a, ok := p[0].(string); ok {
				if b, ok := p[1].(string); ok && len(a)+len(b) > MaxValueBytes {
					return nil, fmt.Errorf("%w: a string of %d bytes", ErrTooBig, len(a)+len(b))
				}
			}
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r)
				}
			}()
			out = runtime.Add(p[0], p[1])
			if v := reflect.ValueOf(out); v.Kind() == reflect.Slice && v.Len() > MaxValueNodes {
				return nil, fmt.Errorf("%w: a list of %d values", ErrTooBig, v.Len())
			}
			return out, nil
		}, new(func(any, any) any)),
	}
}

const (
	concatFunc = "kubeplay_concat"
	addFunc    = "kubeplay_add"
)

// boundedAdd routes + through bounded functions: string + string to
// concatFunc (its static type kept), anything not known to be numbers to
// addFunc. Numbers add natively.
type boundedAdd struct{}

func (boundedAdd) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "+" {
		return
	}
	lt, rt := b.Left.Type(), b.Right.Type()
	var fn string
	switch {
	case isString(lt) && isString(rt):
		fn = concatFunc
	case unknown(lt) && (unknown(rt) || isString(rt)), unknown(rt) && isString(lt):
		// only the run knows: it may be strings
		fn = addFunc
	default:
		// numbers add natively; any other pair keeps expr's own checks
		// (a number plus a string stays a compile error)
		return
	}
	ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{b.Left, b.Right}})
}

func isString(t reflect.Type) bool { return t != nil && t.Kind() == reflect.String }

func unknown(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }
