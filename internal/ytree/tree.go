// Package ytree turns a YAML AST into a small located value tree whose
// strings may hold compiled {{ }} templates, and decodes such trees strictly
// into typed Go structs (unknown keys and wrong types are errors with
// positions). The same tree is decoded at load time, to validate shape, and
// at run time, with templates rendered for one host.
package ytree

import (
	"fmt"
	"strconv"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/diag"
)

// Kind of a Node.
type Kind int

// Kinds.
const (
	Null Kind = iota
	Scalar
	Template
	Map
	Seq
	Expression // a bare expression, compiled when decoded into an *eval.Expr field
)

func (k Kind) String() string {
	return [...]string{"null", "scalar", "template", "mapping", "sequence", "expression"}[k]
}

// Node is a located YAML value.
type Node struct {
	Kind   Kind
	Tok    *token.Token
	Scalar any // string, int64, uint64, float64, bool
	Tmpl   *eval.Template
	Expr   *eval.Expr
	Keys   []Key
	Items  []*Node
}

// Key is one entry of a mapping, in source order.
type Key struct {
	Name string
	Tok  *token.Token
	Val  *Node
}

// Get returns the value of key k, or nil.
func (n *Node) Get(k string) *Node {
	if n == nil {
		return nil
	}
	for _, kv := range n.Keys {
		if kv.Name == k {
			return kv.Val
		}
	}
	return nil
}

// TemplateCompiler compiles template strings; nil means strings stay literal.
type TemplateCompiler func(string) (*eval.Template, error)

// FromAST converts an AST node. Problems go to d; the result is still usable.
func FromAST(n ast.Node, compile TemplateCompiler, d *diag.List) *Node {
	switch x := n.(type) {
	case nil:
		return &Node{Kind: Null}
	case *ast.DocumentNode:
		return FromAST(x.Body, compile, d)
	case *ast.NullNode:
		return &Node{Kind: Null, Tok: x.GetToken()}
	case *ast.TagNode:
		return FromAST(x.Value, compile, d)
	case *ast.AnchorNode:
		return FromAST(x.Value, compile, d)
	case *ast.AliasNode:
		d.At(x.GetToken(), "aliases are not supported; repeat the value")
		return &Node{Kind: Null, Tok: x.GetToken()}
	case *ast.MappingNode:
		out := &Node{Kind: Map, Tok: x.GetToken()}
		for _, mv := range x.Values {
			addKey(out, mv, compile, d)
		}
		return out
	case *ast.MappingValueNode:
		out := &Node{Kind: Map, Tok: x.GetToken()}
		addKey(out, x, compile, d)
		return out
	case *ast.SequenceNode:
		out := &Node{Kind: Seq, Tok: x.GetToken()}
		for _, v := range x.Values {
			out.Items = append(out.Items, FromAST(v, compile, d))
		}
		return out
	case *ast.StringNode:
		return str(x.Value, x.GetToken(), compile, d)
	case *ast.LiteralNode:
		return str(x.Value.Value, x.GetToken(), compile, d)
	case *ast.IntegerNode:
		return &Node{Kind: Scalar, Tok: x.GetToken(), Scalar: x.Value}
	case *ast.FloatNode:
		return &Node{Kind: Scalar, Tok: x.GetToken(), Scalar: x.Value}
	case *ast.BoolNode:
		return &Node{Kind: Scalar, Tok: x.GetToken(), Scalar: x.Value}
	default:
		d.At(n.GetToken(), "unsupported YAML node %s", n.Type())
		return &Node{Kind: Null, Tok: n.GetToken()}
	}
}

func addKey(out *Node, mv *ast.MappingValueNode, compile TemplateCompiler, d *diag.List) {
	k := mv.Key.GetToken()
	name := k.Value
	if sk, ok := mv.Key.(ast.ScalarNode); ok {
		name = fmt.Sprint(sk.GetValue())
	}
	for _, prev := range out.Keys {
		if prev.Name == name {
			d.At(k, "duplicate key %q", name)
		}
	}
	out.Keys = append(out.Keys, Key{Name: name, Tok: k, Val: FromAST(mv.Value, compile, d)})
}

func str(s string, tok *token.Token, compile TemplateCompiler, d *diag.List) *Node {
	if compile != nil && eval.HasTemplate(s) {
		t, err := compile(s)
		if err != nil {
			d.At(tok, "%v", err)
			return &Node{Kind: Scalar, Tok: tok, Scalar: s}
		}
		return &Node{Kind: Template, Tok: tok, Tmpl: t}
	}
	return &Node{Kind: Scalar, Tok: tok, Scalar: s}
}

// Plain converts the tree into plain Go values (map[string]any, []any,
// scalars), rendering templates with env. With a nil env, templates are
// returned as their source text.
func (n *Node) Plain(env any) (any, error) {
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case Null:
		return nil, nil
	case Scalar:
		return n.Scalar, nil
	case Template:
		if env == nil {
			return n.Tmpl.Source, nil
		}
		return n.Tmpl.Render(env)
	case Expression:
		return n.Expr.Source, nil
	case Map:
		m := make(map[string]any, len(n.Keys))
		for _, kv := range n.Keys {
			v, err := kv.Val.Plain(env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kv.Name, err)
			}
			m[kv.Name] = v
		}
		return m, nil
	case Seq:
		s := make([]any, 0, len(n.Items))
		for i, it := range n.Items {
			v, err := it.Plain(env)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			s = append(s, v)
		}
		return s, nil
	}
	return nil, nil
}

// String returns a scalar's text form ("" for other kinds).
func (n *Node) String() string {
	if n == nil {
		return ""
	}
	switch n.Kind {
	case Scalar:
		switch v := n.Scalar.(type) {
		case string:
			return v
		case int64:
			return strconv.FormatInt(v, 10)
		default:
			return fmt.Sprint(v)
		}
	case Template:
		return n.Tmpl.Source
	}
	return ""
}

// CompileTemplates turns every string scalar holding {{ }} under n into a
// compiled Template node, recording compile errors in d.
func CompileTemplates(n *Node, compile TemplateCompiler, d *diag.List) {
	if n == nil {
		return
	}
	switch n.Kind {
	case Scalar:
		if s, ok := n.Scalar.(string); ok && eval.HasTemplate(s) {
			t, err := compile(s)
			if err != nil {
				d.At(n.Tok, "%v", err)
				return
			}
			n.Kind, n.Tmpl, n.Scalar = Template, t, nil
		}
	case Map:
		for _, kv := range n.Keys {
			CompileTemplates(kv.Val, compile, d)
		}
	case Seq:
		for _, it := range n.Items {
			CompileTemplates(it, compile, d)
		}
	}
}

// HasTemplates reports whether any value under n is a template.
func HasTemplates(n *Node) bool {
	if n == nil {
		return false
	}
	switch n.Kind {
	case Template:
		return true
	case Map:
		for _, kv := range n.Keys {
			if HasTemplates(kv.Val) {
				return true
			}
		}
	case Seq:
		for _, it := range n.Items {
			if HasTemplates(it) {
				return true
			}
		}
	}
	return false
}
