package yamledit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// This file applies primitive operations to the parsed document, touching
// only the nodes on the path. New nodes are rendered as YAML text at the
// column where they go and parsed, so they print with the right indentation.

var errAlias = errors.New("the path goes through an anchor, alias or tag; edit it by hand")

// unwrap returns the node a value stands for, refusing aliases and tags
// (an edit through them would change other places too).
func unwrap(n ast.Node) (ast.Node, error) {
	switch x := n.(type) {
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
		return nil, errAlias
	case *ast.MappingValueNode:
		// a single-pair mapping may be held without its MappingNode
		return &ast.MappingNode{BaseNode: &ast.BaseNode{}, Start: x.Start, Values: []*ast.MappingValueNode{x}}, nil
	}
	return n, nil
}

func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// keyOf is the decoded text of a mapping key.
func keyOf(mv *ast.MappingValueNode) string {
	if k, ok := mv.Key.(*ast.StringNode); ok {
		return k.Value
	}
	return strings.Trim(mv.Key.String(), `"'`)
}

func entryIndex(m *ast.MappingNode, key string) int {
	return slices.IndexFunc(m.Values, func(mv *ast.MappingValueNode) bool { return keyOf(mv) == key })
}

func itemIndex(s *ast.SequenceNode, m *match) int {
	for i, it := range s.Values {
		mm, ok := it.(*ast.MappingNode)
		if !ok {
			continue
		}
		if j := entryIndex(mm, m.Key); j >= 0 {
			var v any
			if yaml.NodeToValue(mm.Values[j].Value, &v) == nil && fmt.Sprint(v) == m.Value {
				return i
			}
		}
	}
	return -1
}

// render parses v as YAML text at column col (1-based) and returns its
// top node: for wrap "entry", the key: value pair; for "item", the sequence
// item.
func renderEntry(key string, v any, col int) (*ast.MappingValueNode, error) {
	f, err := renderAt(yaml.MapSlice{{Key: key, Value: v}}, col)
	if err != nil {
		return nil, err
	}
	switch b := f.(type) {
	case *ast.MappingNode:
		return b.Values[0], nil
	case *ast.MappingValueNode:
		return b, nil
	}
	return nil, fmt.Errorf("render %s: unexpected %T", key, f)
}

func renderItem(v any, col int) (ast.Node, error) {
	f, err := renderAt([]any{v}, col)
	if err != nil {
		return nil, err
	}
	s, ok := f.(*ast.SequenceNode)
	if !ok || len(s.Values) != 1 {
		return nil, fmt.Errorf("render item: unexpected %T", f)
	}
	return s.Values[0], nil
}

func renderAt(v any, col int) (ast.Node, error) {
	b, err := yaml.MarshalWithOptions(v, yaml.IndentSequence(false))
	if err != nil {
		return nil, err
	}
	pad := strings.Repeat(" ", col-1)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := range lines {
		lines[i] = pad + lines[i]
	}
	f, err := parser.ParseBytes([]byte(strings.Join(lines, "\n")+"\n"), parser.ParseComments)
	if err != nil {
		return nil, err
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, errors.New("render: no document")
	}
	return f.Docs[0].Body, nil
}

// nest builds the value that a set of segs on a missing branch creates.
func nest(segs []segment, val any) (any, error) {
	return dataSet(nil, segs, val)
}

// slot is a place that holds a node: a document body, an entry's value or
// a sequence item.
type slot struct {
	get func() ast.Node
	set func(ast.Node)
	col int // the column a block value put here starts at
}

// astSet sets the value at segs below the node held in s.
func astSet(s slot, segs []segment, val any) error {
	if len(segs) == 0 {
		return errors.New("empty path")
	}
	cur := s.get()
	seg := segs[0]
	if isNull(cur) {
		// a missing or null branch: render the whole rest in one go
		v, err := nest(segs, val)
		if err != nil {
			return err
		}
		return replaceSlot(s, v)
	}
	n, err := unwrap(cur)
	if err != nil {
		return err
	}
	if seg.Index < 0 && seg.Match == nil {
		m, ok := n.(*ast.MappingNode)
		if !ok {
			return fmt.Errorf("%s: the value there is not a mapping", seg)
		}
		if m.IsFlowStyle {
			// block entries cannot go into a flow mapping ("{}"): the
			// edited mapping is rendered again, in block style
			return rerender(s, m, segs, val)
		}
		if n != cur {
			s.set(m)
		}
		i := entryIndex(m, seg.Key)
		if i < 0 {
			v, err := nest(segs[1:], val)
			if err != nil {
				return err
			}
			col := mappingCol(m, s.col)
			e, err := renderEntry(seg.Key, v, col)
			if err != nil {
				return err
			}
			m.Values = append(m.Values, e)
			return nil
		}
		mv := m.Values[i]
		child := slot{get: func() ast.Node { return mv.Value }, col: mv.Key.GetToken().Position.Column + 2}
		child.set = func(x ast.Node) { mv.Value = x }
		if len(segs) == 1 {
			return replaceEntryValue(mv, val)
		}
		return astSet(child, segs[1:], val)
	}
	sq, ok := n.(*ast.SequenceNode)
	if !ok {
		return fmt.Errorf("%s: the value there is not a sequence", seg)
	}
	if sq.IsFlowStyle {
		// block items cannot go into a flow sequence ("[]"): the edited
		// list is rendered again, in block style
		return rerender(s, sq, segs, val)
	}
	i := seg.Index
	if seg.Match != nil {
		if i = itemIndex(sq, seg.Match); i < 0 {
			v, err := nest(segs, val)
			if err != nil {
				return err
			}
			items := v.([]any)
			item := items[0]
			if len(segs) == 1 {
				item = withMatchKey(item, seg.Match)
			}
			return astAppend(sq, item)
		}
	}
	if i >= len(sq.Values) {
		return fmt.Errorf("%s: the sequence has %d items", seg, len(sq.Values))
	}
	col := sq.Start.Position.Column + 2
	if len(segs) == 1 {
		x, err := renderItem(val, sq.Start.Position.Column)
		if err != nil {
			return err
		}
		keepComment(sq.Values[i], x)
		sq.Values[i] = x
		return nil
	}
	child := slot{get: func() ast.Node { return sq.Values[i] }, set: func(x ast.Node) { sq.Values[i] = x }, col: col}
	return astSet(child, segs[1:], val)
}

// rerender replaces the flow collection n held in s with its edited data,
// rendered in block style.
func rerender(s slot, n ast.Node, segs []segment, val any) error {
	var data any
	if err := yaml.NodeToValue(n, &data); err != nil {
		return err
	}
	v, err := dataSet(data, segs, val)
	if err != nil {
		return err
	}
	return replaceSlot(s, v)
}

// mappingCol is the column of a mapping's keys (def when it is empty).
func mappingCol(m *ast.MappingNode, def int) int {
	if len(m.Values) > 0 {
		return m.Values[0].Key.GetToken().Position.Column
	}
	return def
}

// replaceSlot puts a freshly rendered v where a null or missing node was.
func replaceSlot(s slot, v any) error {
	var x ast.Node
	var err error
	if s.col >= 3 {
		x, err = renderItem(v, s.col-2)
	} else {
		x, err = renderAt(v, 1)
	}
	if err != nil {
		return err
	}
	s.set(x)
	return nil
}

// replaceEntryValue gives an existing key a new value, keeping the key, its
// comments, and a scalar's line comment.
func replaceEntryValue(mv *ast.MappingValueNode, val any) error {
	e, err := renderEntry(keyOf(mv), val, mv.Key.GetToken().Position.Column)
	if err != nil {
		return err
	}
	keepComment(mv.Value, e.Value)
	mv.Value = e.Value
	return nil
}

func keepComment(old, nw ast.Node) {
	if old == nil || nw == nil {
		return
	}
	if c := old.GetComment(); c != nil && nw.GetComment() == nil {
		if _, scalar := nw.(ast.ScalarNode); scalar {
			_ = nw.SetComment(c)
		}
	}
}

// astAppend adds an item at the end of a sequence.
func astAppend(sq *ast.SequenceNode, v any) error {
	x, err := renderItem(v, sq.Start.Position.Column)
	if err != nil {
		return err
	}
	sq.Values = append(sq.Values, x)
	if len(sq.ValueHeadComments) > 0 {
		sq.ValueHeadComments = append(sq.ValueHeadComments, nil)
	}
	return nil
}

// astDelete removes the value at segs below n; a missing one is no change.
func astDelete(n ast.Node, segs []segment) error {
	var holder *ast.MappingValueNode // the entry whose value n is
	for len(segs) > 0 {
		if isNull(n) {
			return nil
		}
		u, err := unwrap(n)
		if err != nil {
			return err
		}
		seg := segs[0]
		switch x := u.(type) {
		case *ast.MappingNode:
			if seg.Index >= 0 || seg.Match != nil {
				return nil
			}
			i := entryIndex(x, seg.Key)
			if i < 0 {
				return nil
			}
			if len(segs) == 1 {
				if u != n {
					return fmt.Errorf("%s: cannot delete the only key of an inline mapping; edit it by hand", seg)
				}
				x.Values = slices.Delete(x.Values, i, i+1)
				if len(x.Values) == 0 && holder != nil {
					// an empty block mapping has no text of its own: "{}"
					return replaceEntryValue(holder, map[string]any{})
				}
				return nil
			}
			holder = x.Values[i]
			n = holder.Value
		case *ast.SequenceNode:
			i := seg.Index
			if seg.Match != nil {
				i = itemIndex(x, seg.Match)
			}
			if i < 0 || i >= len(x.Values) || (seg.Index < 0 && seg.Match == nil) {
				return nil
			}
			if len(segs) == 1 {
				x.Values = slices.Delete(x.Values, i, i+1)
				if len(x.ValueHeadComments) > i {
					x.ValueHeadComments = slices.Delete(x.ValueHeadComments, i, i+1)
				}
				if len(x.Values) == 0 {
					x.IsFlowStyle = true // an empty block sequence has no text of its own: "[]"
				}
				return nil
			}
			holder, n = nil, x.Values[i]
		default:
			return nil
		}
		segs = segs[1:]
	}
	return nil
}

// astGet returns the node at segs below n.
func astGet(n ast.Node, segs []segment) (ast.Node, error) {
	for _, seg := range segs {
		if isNull(n) {
			return nil, nil
		}
		u, err := unwrap(n)
		if err != nil {
			return nil, err
		}
		switch x := u.(type) {
		case *ast.MappingNode:
			i := -1
			if seg.Index < 0 && seg.Match == nil {
				i = entryIndex(x, seg.Key)
			}
			if i < 0 {
				return nil, nil
			}
			n = x.Values[i].Value
		case *ast.SequenceNode:
			i := seg.Index
			if seg.Match != nil {
				i = itemIndex(x, seg.Match)
			}
			if i < 0 || i >= len(x.Values) {
				return nil, nil
			}
			n = x.Values[i]
		default:
			return nil, nil
		}
	}
	return n, nil
}
