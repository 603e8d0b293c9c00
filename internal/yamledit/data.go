package yamledit

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/goccy/go-yaml"
)

// This file applies the operations to plain decoded data. The result is the
// intended content of the document; the AST edit must decode to exactly it.

// normalize gives v the shape the YAML decoder produces (so that values
// from a playbook compare equal to values read back from a file).
func normalize(v any) (any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func findMatch(items []any, m *match) int {
	for i, it := range items {
		mm, ok := it.(map[string]any)
		if ok && fmt.Sprint(mm[m.Key]) == m.Value {
			return i
		}
	}
	return -1
}

// dataSet sets the value at segs, creating missing mappings; a [k=v] step
// with no match appends an item (with k set to v when the value is a mapping).
func dataSet(cur any, segs []segment, val any) (any, error) {
	if len(segs) == 0 {
		return val, nil
	}
	s := segs[0]
	switch {
	case s.Index < 0 && s.Match == nil:
		m, ok := cur.(map[string]any)
		if !ok {
			if cur != nil {
				return nil, fmt.Errorf("%s: not a mapping", s)
			}
			m = map[string]any{}
		}
		nv, err := dataSet(m[s.Key], segs[1:], val)
		if err != nil {
			return nil, err
		}
		m[s.Key] = nv
		return m, nil
	default:
		items, ok := cur.([]any)
		if !ok && cur != nil {
			return nil, fmt.Errorf("%s: not a sequence", s)
		}
		i := s.Index
		if s.Match != nil {
			i = findMatch(items, s.Match)
			if i < 0 {
				nv, err := dataSet(map[string]any{s.Match.Key: s.Match.Value}, segs[1:], val)
				if err != nil {
					return nil, err
				}
				if len(segs) == 1 {
					nv = withMatchKey(nv, s.Match)
				}
				return append(items, nv), nil
			}
		}
		if i >= len(items) {
			return nil, fmt.Errorf("%s: the sequence has %d items", s, len(items))
		}
		nv, err := dataSet(items[i], segs[1:], val)
		if err != nil {
			return nil, err
		}
		items[i] = nv
		return items, nil
	}
}

// withMatchKey makes a new [k=v] item carry k: v.
func withMatchKey(v any, m *match) any {
	if mm, ok := v.(map[string]any); ok {
		if _, has := mm[m.Key]; !has {
			mm[m.Key] = m.Value
		}
	}
	return v
}

// dataGet returns the value at segs and whether it exists.
func dataGet(cur any, segs []segment) (any, bool) {
	for _, s := range segs {
		switch {
		case s.Index < 0 && s.Match == nil:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[s.Key]; !ok {
				return nil, false
			}
		default:
			items, ok := cur.([]any)
			if !ok {
				return nil, false
			}
			i := s.Index
			if s.Match != nil {
				i = findMatch(items, s.Match)
			}
			if i < 0 || i >= len(items) {
				return nil, false
			}
			cur = items[i]
		}
	}
	return cur, true
}

// dataDelete removes the value at segs; a missing value is no change.
func dataDelete(cur any, segs []segment) any {
	if len(segs) == 0 {
		return cur
	}
	s := segs[0]
	switch c := cur.(type) {
	case map[string]any:
		if s.Index >= 0 || s.Match != nil {
			return cur
		}
		if len(segs) == 1 {
			delete(c, s.Key)
		} else if v, ok := c[s.Key]; ok {
			c[s.Key] = dataDelete(v, segs[1:])
		}
	case []any:
		i := s.Index
		if s.Match != nil {
			i = findMatch(c, s.Match)
		}
		if i < 0 || i >= len(c) || (s.Index < 0 && s.Match == nil) {
			return cur
		}
		if len(segs) == 1 {
			return slices.Delete(c, i, i+1)
		}
		c[i] = dataDelete(c[i], segs[1:])
	}
	return cur
}

// deepEqual compares decoded YAML values.
func deepEqual(a, b any) bool { return reflect.DeepEqual(a, b) }
