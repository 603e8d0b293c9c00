// Package tomledit sets and deletes keys of one table of a TOML file (such
// as containerd's config.toml) the way an operator would by hand: only the
// lines of those keys change, in that table, and every other line, comment
// and table stays as it was. Each edit is proven by decoding the file
// before and after and comparing the result with the intended data.
package tomledit

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ParseKey splits a dotted TOML key as a table header writes it
// (plugins."io.containerd.grpc.v1.cri".containerd) into its parts.
func ParseKey(s string) ([]string, error) {
	var parts []string
	s = strings.TrimSpace(s)
	for s != "" {
		var part string
		switch s[0] {
		case '"', '\'':
			end := closing(s)
			if end < 0 {
				return nil, fmt.Errorf("key %q: unclosed quote", s)
			}
			part = s[1 : end+1]
			if s[0] == '"' {
				u, err := strconv.Unquote(s[:end+2])
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", s, err)
				}
				part = u
			}
			s = strings.TrimSpace(s[end+2:])
		default:
			end := strings.IndexAny(s, ". \t")
			if end < 0 {
				end = len(s)
			}
			part = s[:end]
			if !bareKey.MatchString(part) {
				return nil, fmt.Errorf("key part %q: not a bare key (quote it)", part)
			}
			s = strings.TrimSpace(s[end:])
		}
		parts = append(parts, part)
		if s == "" {
			break
		}
		if s[0] != '.' {
			return nil, fmt.Errorf("key: %q after %q", s, part)
		}
		s = strings.TrimSpace(s[1:])
		if s == "" {
			return nil, errors.New("key ends with a dot")
		}
	}
	if len(parts) == 0 {
		return nil, errors.New("empty key")
	}
	return parts, nil
}

// closing finds the index in s[1:] of the quote that closes s's opening
// one (a basic string's backslash escapes skipped), or -1.
func closing(s string) int {
	for i := 1; i < len(s); i++ {
		switch {
		case s[0] == '"' && s[i] == '\\':
			i++
		case s[i] == s[0]:
			return i - 1
		}
	}
	return -1
}

var (
	bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// a [table] header (not an [[array of tables]]), with an optional comment
	header = regexp.MustCompile(`^\s*\[([^\[\]]+)\]\s*(#.*)?$`)
	// an [[array of tables]] header
	arrayHeader = regexp.MustCompile(`^\s*\[\[`)
	// a key = value line: its indentation and key
	keyLine = regexp.MustCompile(`^(\s*)("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=`)
	// after the "=": a scalar value and a trailing comment
	scalarTail = regexp.MustCompile(`^(\s*)(true|false|[-+0-9][-+0-9._eE:TZ]*|"(?:[^"\\]|\\.)*"|'[^']*')(\s*#.*)?\s*$`)
)

// Literal renders a value as TOML: a bool, an integer, a float or a string.
func Literal(v any) (string, error) {
	switch x := v.(type) {
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", fmt.Errorf("%v is no TOML value here", x)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s, nil
	case string:
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range x {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, `\u%04X`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
		return b.String(), nil
	}
	return "", fmt.Errorf("a %T is no TOML value here (bool, integer, float or string)", v)
}

// line is one line of the file, and whether it is inside a multi-line
// string (where nothing is a header or a key).
type line struct {
	text    string
	inMulti bool
}

func split(src string) []line {
	raw := strings.SplitAfter(src, "\n")
	if len(raw) > 0 && raw[len(raw)-1] == "" {
		raw = raw[:len(raw)-1]
	}
	out := make([]line, len(raw))
	delim := ""
	for i, r := range raw {
		out[i] = line{text: r, inMulti: delim != ""}
		// toggle on each unescaped multi-line delimiter in the line
		for j := 0; j+3 <= len(r); {
			switch {
			case delim == "" && (r[j:j+3] == `"""` || r[j:j+3] == `'''`):
				delim = r[j : j+3]
				j += 3
			case delim != "" && r[j:j+3] == delim && (delim == `'''` || j == 0 || r[j-1] != '\\'):
				delim = ""
				j += 3
			case delim == "" && r[j] == '#':
				j = len(r)
			default:
				j++
			}
		}
	}
	return out
}

// section finds the lines of table want: its header's index and the end
// (exclusive) of its body; header -1 when the table has no header.
func section(lines []line, want []string) (hdr, end int, err error) {
	hdr, end = -1, len(lines)
	for i, l := range lines {
		if l.inMulti {
			continue
		}
		if arrayHeader.MatchString(l.text) {
			if hdr >= 0 {
				return hdr, i, nil
			}
			continue
		}
		m := header.FindStringSubmatch(strings.TrimRight(l.text, "\r\n"))
		if m == nil {
			continue
		}
		if hdr >= 0 {
			return hdr, i, nil
		}
		parts, err := ParseKey(m[1])
		if err != nil {
			return -1, 0, fmt.Errorf("line %d: %w", i+1, err)
		}
		if reflect.DeepEqual(parts, want) {
			hdr = i
		}
	}
	return hdr, end, nil
}

// keyOf reads a key = value line: its indentation, its key, and the
// length of the line up to and with the "=".
func keyOf(text string) (indent, key string, upto int, ok bool) {
	m := keyLine.FindStringSubmatch(text)
	if m == nil {
		return "", "", 0, false
	}
	k := m[2]
	if parts, err := ParseKey(k); err == nil && len(parts) == 1 {
		k = parts[0]
	}
	return m[1], k, len(m[0]), true
}

// Apply sets keys of table (as its header writes it) to the values of set
// and deletes the keys of del. A missing table is added at the end. The
// result is decoded and compared with the intended data: an edit that
// would change anything else is refused.
func Apply(src []byte, table string, set map[string]any, del []string) ([]byte, error) {
	path, err := ParseKey(table)
	if err != nil {
		return nil, fmt.Errorf("table: %w", err)
	}
	var before map[string]any
	if _, err := toml.Decode(string(src), &before); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	lines := split(string(src))
	hdr, end, err := section(lines, path)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	literal := map[string]string{}
	for _, k := range keys {
		if literal[k], err = Literal(set[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	text := func(l line) string { return strings.TrimRight(l.text, "\r\n") }
	if hdr < 0 {
		if len(keys) == 0 {
			return src, nil // nothing to delete in a table that is not there
		}
		var b strings.Builder
		b.WriteString(string(src))
		if len(src) > 0 && !strings.HasSuffix(string(src), "\n") {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "\n[%s]\n", strings.TrimSpace(table))
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s = %s\n", keyText(k), literal[k])
		}
		return verify(src, []byte(b.String()), before, path, set, del)
	}
	body := lines[hdr+1 : end]
	var out []string
	for _, l := range lines[:hdr+1] {
		out = append(out, l.text)
	}
	indent, lastKey, done := "", -1, map[string]bool{}
	for _, l := range body {
		t := text(l)
		in, k, upto, isKey := keyOf(t)
		if !l.inMulti && isKey {
			if indent == "" {
				indent = in
			}
			if slices.Contains(del, k) {
				continue
			}
			if lit, ok := literal[k]; ok && !done[k] {
				done[k] = true
				nl := l.text[len(t):]
				if m := scalarTail.FindStringSubmatch(t[upto:]); m != nil {
					// the value replaced, its spacing and comment kept
					t = t[:upto] + m[1] + lit + m[3]
				} else {
					t = in + keyText(k) + " = " + lit
				}
				out = append(out, t+nl)
				lastKey = len(out) - 1
				continue
			}
			lastKey = len(out)
		}
		out = append(out, l.text)
	}
	var add []string
	for _, k := range keys {
		if !done[k] {
			if indent == "" {
				indent = leading(text(lines[hdr])) + "  "
			}
			add = append(add, indent+keyText(k)+" = "+literal[k]+"\n")
		}
	}
	at := lastKey + 1
	if lastKey < 0 {
		at = hdr + 1
	}
	if at > 0 && !strings.HasSuffix(out[at-1], "\n") {
		out[at-1] += "\n"
	}
	out = append(out[:at], append(add, out[at:]...)...)
	for _, l := range lines[end:] {
		out = append(out, l.text)
	}
	return verify(src, []byte(strings.Join(out, "")), before, path, set, del)
}

// verify decodes the edited file and compares it with before plus the
// intended change; src itself comes back when nothing changed.
func verify(src, after []byte, before map[string]any, path []string, set map[string]any, del []string) ([]byte, error) {
	var got map[string]any
	if _, err := toml.Decode(string(after), &got); err != nil {
		return nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	want := deepCopy(before)
	t := want
	for _, p := range path {
		next, ok := t[p].(map[string]any)
		if !ok {
			if _, exists := t[p]; exists {
				return nil, fmt.Errorf("%s is not a table", strings.Join(path, "."))
			}
			next = map[string]any{}
			t[p] = next
		}
		t = next
	}
	for k, v := range set {
		t[k] = normalize(v)
	}
	for _, k := range del {
		delete(t, k)
	}
	if !reflect.DeepEqual(normalizeMap(got), normalizeMap(want)) {
		return nil, fmt.Errorf("refused: the edit would change more than the keys of [%s] (a key defined elsewhere, as a dotted key or an inline table?); edit it by hand", strings.Join(path, "."))
	}
	if reflect.DeepEqual(normalizeMap(before), normalizeMap(got)) {
		return src, nil
	}
	return after, nil
}

func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
	case map[string]any:
		return normalizeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeMap(e)
		}
		return out
	}
	return v
}

func normalizeMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = normalize(v)
	}
	return out
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

func keyText(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	s, _ := Literal(k)
	return s
}

func leading(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// Get reads the value of key in table (as a header writes it) of a TOML
// document, as a TOML reader sees it (dotted keys and inline tables
// included); nil when the table or the key is absent.
func Get(src []byte, table, key string) (any, error) {
	path, err := ParseKey(table)
	if err != nil {
		return nil, fmt.Errorf("table: %w", err)
	}
	var doc map[string]any
	if _, err := toml.Decode(string(src), &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	t := doc
	for _, p := range path {
		next, ok := t[p].(map[string]any)
		if !ok {
			return nil, nil
		}
		t = next
	}
	return normalize(t[key]), nil
}
