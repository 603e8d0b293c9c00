// Package yamledit edits YAML files the way an operator would by hand:
// the touched values change, and every other line (comments, key order,
// quoting, indentation) stays as it was. It selects one document of a
// multi-document file, applies set / delete / merge / append / remove_item
// operations by path, and proves each edit by decoding the result and
// comparing it with the intended data before it returns.
package yamledit

import (
	"fmt"
	"strconv"
	"strings"
)

// segment is one step of a path: a mapping key, a sequence index, or the
// sequence item whose Key field equals Value (e.g. containers[name=etcd]).
type segment struct {
	Key   string
	Index int // -1 unless an index step
	Match *match
}

type match struct{ Key, Value string }

func (s segment) String() string {
	switch {
	case s.Match != nil:
		return fmt.Sprintf("[%s=%s]", s.Match.Key, s.Match.Value)
	case s.Index >= 0:
		return fmt.Sprintf("[%d]", s.Index)
	}
	if strings.ContainsAny(s.Key, ".[]\"") {
		return strconv.Quote(s.Key)
	}
	return s.Key
}

// parsePath parses a.b[0].c, spec.containers[name=etcd].command and
// evictionHard."memory.available".
func parsePath(p string) ([]segment, error) {
	var out []segment
	i := 0
	for i < len(p) {
		switch {
		case p[i] == '.':
			if i == 0 || i == len(p)-1 || p[i+1] == '.' {
				return nil, fmt.Errorf("path %q: empty key", p)
			}
			i++
		case p[i] == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("path %q: unclosed [", p)
			}
			body := p[i+1 : i+j]
			i += j + 1
			if k, v, ok := strings.Cut(body, "="); ok {
				if k == "" {
					return nil, fmt.Errorf("path %q: [key=value] needs a key", p)
				}
				out = append(out, segment{Index: -1, Match: &match{Key: k, Value: v}})
				continue
			}
			n, err := strconv.Atoi(body)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("path %q: [%s] is neither an index nor key=value", p, body)
			}
			out = append(out, segment{Index: n})
		case p[i] == '"':
			j := i + 1
			for j < len(p) && p[j] != '"' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(p) {
				return nil, fmt.Errorf("path %q: unclosed quote", p)
			}
			k, err := strconv.Unquote(p[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", p, err)
			}
			out = append(out, segment{Key: k, Index: -1})
			i = j + 1
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			out = append(out, segment{Key: p[i:j], Index: -1})
			i = j
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty path")
	}
	return out, nil
}

func pathString(segs []segment) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 && s.Index < 0 && s.Match == nil {
			b.WriteByte('.')
		}
		b.WriteString(s.String())
	}
	return b.String()
}
