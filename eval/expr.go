package eval

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/kubeplay/kubeplay/secret"
)

// Compiler compiles expressions against one environment type.
type Compiler struct {
	env  reflect.Type
	base []expr.Option // the environment and functions, built once
}

// NewCompiler returns a compiler for environments of type env (a struct type
// built by EnvType).
func NewCompiler(env reflect.Type) *Compiler {
	base := []expr.Option{expr.Env(reflect.Zero(env).Interface())}
	base = append(base, functions()...)
	base = append(base, boundedFunctions()...)
	return &Compiler{env: env, base: base}
}

// EnvType is the environment type this compiler checks against.
func (c *Compiler) EnvType() reflect.Type { return c.env }

var structDesc = regexp.MustCompile(`type struct \{[^{}]*\}`)
var exprTag = regexp.MustCompile(`expr:\\?"([A-Za-z0-9_]+)\\?"`)

// readable replaces expr's rendering of generated struct types (which
// shows Go field names and tags) with the names expressions can use.
func readable(err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return err
	}
	msg := structDesc.ReplaceAllStringFunc(fe.Message, func(s string) string {
		var names []string
		for _, m := range exprTag.FindAllStringSubmatch(s, -1) {
			names = append(names, m[1])
		}
		if len(names) == 0 {
			return "an object with no fields"
		}
		return "an object with fields [" + strings.Join(names, ", ") + "]"
	})
	if msg == fe.Message {
		return err
	}
	cp := *fe
	cp.Message = msg
	return &cp
}

func (c *Compiler) options(extra ...expr.Option) []expr.Option {
	opts := append([]expr.Option(nil), c.base...)
	return append(opts, extra...)
}

// Expr is a compiled bare expression.
type Expr struct {
	Source  string
	program *vm.Program
}

// CompileBool compiles a bare expression that must yield a bool
// (when, until, changed_when, failed_when, assert).
func (c *Compiler) CompileBool(src string) (*Expr, error) {
	return c.compile(src, expr.AsBool())
}

// CompileAny compiles a bare expression of any type.
func (c *Compiler) CompileAny(src string) (*Expr, error) {
	return c.compile(src)
}

func (c *Compiler) compile(src string, extra ...expr.Option) (*Expr, error) {
	// one visitor (each costs the checker a pass): secrets, and + bounded
	guard := &secretGuard{}
	p, err := expr.Compile(src, c.options(append(extra, expr.Patch(guard))...)...)
	if err == nil && guard.err != nil {
		err = guard.err.Bind(file.NewSource(src))
	}
	if err != nil {
		return nil, readable(err)
	}
	return &Expr{Source: src, program: p}, nil
}

// Type is the static result type of the expression (interface{} when
// unknown).
func (e *Expr) Type() reflect.Type {
	t := e.program.Node().Type()
	if t == nil {
		return reflect.TypeOf((*any)(nil)).Elem()
	}
	return t
}

// Eval runs the expression.
func (e *Expr) Eval(env any) (any, error) {
	out, err := expr.Run(e.program, env)
	if err != nil {
		return nil, fmt.Errorf("evaluate %q: %w", e.Source, err)
	}
	return out, nil
}

// EvalBool runs a bool expression.
func (e *Expr) EvalBool(env any) (bool, error) {
	out, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("evaluate %q: got %T, want bool", e.Source, out)
	}
	return b, nil
}

// Template is a string with {{ expr }} parts.
type Template struct {
	Source string
	parts  []part
}

type part struct {
	lit  string
	expr *Expr
	off  int // byte offset of the expression in Source
}

// ErrTemplate marks malformed template syntax.
var ErrTemplate = errors.New("template syntax")

// TemplateError carries the offset of the failing expression in the source.
type TemplateError struct {
	Offset int
	Err    error
}

func (e *TemplateError) Error() string { return e.Err.Error() }
func (e *TemplateError) Unwrap() error { return e.Err }

// HasTemplate reports whether s contains {{ }}.
func HasTemplate(s string) bool { return strings.Contains(s, "{{") }

// CompileTemplate compiles every {{ expr }} in src.
func (c *Compiler) CompileTemplate(src string) (*Template, error) {
	t := &Template{Source: src}
	rest, base := src, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if rest != "" {
				t.parts = append(t.parts, part{lit: rest})
			}
			return t, nil
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := closing(rest[i+2:])
		if j < 0 {
			return nil, &TemplateError{Offset: base + i, Err: fmt.Errorf("%w: unclosed {{ in %q", ErrTemplate, src)}
		}
		body := strings.TrimSpace(rest[i+2 : i+2+j])
		if body == "" {
			return nil, &TemplateError{Offset: base + i, Err: fmt.Errorf("%w: empty {{ }} in %q", ErrTemplate, src)}
		}
		e, err := c.CompileAny(body)
		if err != nil {
			return nil, &TemplateError{Offset: base + i + 2, Err: err}
		}
		t.parts = append(t.parts, part{expr: e, off: base + i})
		adv := i + 2 + j + 2
		rest, base = rest[adv:], base+adv
	}
}

// closing finds the "}}" that ends an expression, skipping quoted strings.
func closing(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'' || ch == '`':
			quote = ch
		case ch == '}' && i+1 < len(s) && s[i+1] == '}':
			return i
		}
	}
	return -1
}

// Single reports whether the template is exactly one expression, in which
// case Render keeps the expression's native type.
func (t *Template) Single() bool { return len(t.parts) == 1 && t.parts[0].expr != nil }

// MaySecret reports whether an expression of the template is statically a
// secret, so that its rendering is one.
func (t *Template) MaySecret() bool {
	for _, p := range t.parts {
		if p.expr != nil && p.expr.Type() == secretType {
			return true
		}
	}
	return false
}

// Type is the static type of a single-expression template, else string.
func (t *Template) Type() reflect.Type {
	if t.Single() {
		return t.parts[0].expr.Type()
	}
	return reflect.TypeOf("")
}

// Render evaluates the template. A template that is one expression yields
// that value as is; otherwise the parts are concatenated into a string. If any
// part is a secret, the concatenation is a secret too.
func (t *Template) Render(env any) (any, error) {
	if t.Single() {
		return t.parts[0].expr.Eval(env)
	}
	var b strings.Builder
	isSecret := false
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.expr.Eval(env)
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case secret.String:
			isSecret = true
			b.WriteString(x.Reveal())
		case nil:
		case string:
			b.WriteString(x)
		default:
			if err := checkSize(x); err != nil {
				return nil, fmt.Errorf("render %q: %w", p.expr.Source, err)
			}
			fmt.Fprint(&b, x)
		}
		if b.Len() > MaxValueBytes {
			return nil, fmt.Errorf("render: %w: more than %d bytes", ErrTooBig, MaxValueBytes)
		}
	}
	if isSecret {
		return secret.New(b.String()), nil
	}
	return b.String(), nil
}
