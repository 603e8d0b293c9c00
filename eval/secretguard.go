package eval

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"

	"github.com/kubeplay/kubeplay/secret"
)

var secretType = reflect.TypeOf(secret.String{})

// secretGuard refuses, at compile time, a method call on a secret (such as
// params.tok.Reveal()): an expression may pass a secret on whole, where the
// type system keeps it a secret, but never take its plaintext out.
type secretGuard struct{ err *file.Error }

func (g *secretGuard) Visit(node *ast.Node) {
	boundedAdd{}.Visit(node)
	if g.err != nil {
		return
	}
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Node.Type() != secretType {
		return
	}
	name := "a member"
	if s, ok := m.Property.(*ast.StringNode); ok {
		name = s.Value + "()"
		if !m.Method {
			name = s.Value
		}
	}
	g.err = &file.Error{Location: m.Location(), Message: fmt.Sprintf(
		"%s of a secret cannot be used in an expression: a secret is passed on whole (as a param or into an env var), and its value never enters an expression", name)}
}
