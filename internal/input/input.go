// Package input bounds what kubeplay reads from users before it is parsed:
// files must be regular and small, and YAML must not nest deeper than a
// person writes. Each limit fails with a clear error in fixed memory and
// time, where an unbounded parse would exhaust memory or hang.
package input

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Limits, fixed: far above any real playbook or inventory, far below what
// hurts the runner.
const (
	// MaxPlaybook is the largest playbook or steps file (the largest
	// bundled playbook is about 20 KiB).
	MaxPlaybook = 2 << 20
	// MaxInventory is the largest inventory (about 20,000 hosts with vars).
	MaxInventory = 8 << 20
	// MaxVarsFile is the largest -e @file.
	MaxVarsFile = 2 << 20
	// MaxDepth is the deepest nesting of YAML flow collections ([ and {).
	MaxDepth = 100
)

// ErrTooLarge, ErrNotRegular and ErrTooDeep classify refused input.
var (
	ErrTooLarge   = errors.New("too large")
	ErrNotRegular = errors.New("not a regular file")
	ErrTooDeep    = errors.New("nested too deeply")
)

// ReadFile reads a regular file of at most limit bytes. A device, FIFO or
// directory is refused before it is opened for reading (/dev/zero would
// never end), and a file that grows past the limit while read is refused
// too.
func ReadFile(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", path, ErrTooLarge, st.Size(), limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: over %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}

var bom = []byte("\xef\xbb\xbf")

// YAML checks YAML text before it is parsed: its size (limit) and the
// nesting of its flow collections (MaxDepth). It returns the text without
// a UTF-8 byte order mark, which editors on Windows write.
func YAML(name string, data []byte, limit int) ([]byte, error) {
	if len(data) > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", name, ErrTooLarge, len(data), limit)
	}
	data = bytes.TrimPrefix(data, bom)
	if line, ok := depthOK(data, MaxDepth); !ok {
		return nil, fmt.Errorf("%s:%d: %w: flow collections ([ and {) nest more than %d deep", name, line, ErrTooDeep, MaxDepth)
	}
	return data, nil
}

// depthOK scans for [ and { outside quotes and comments. It reports the
// line where the nesting first passes max.
func depthOK(data []byte, max int) (int, bool) {
	depth, line := 0, 1
	var quote byte
	comment := false
	for i, c := range data {
		if c == '\n' {
			// a quote is taken to end with its line: a quoted scalar that
			// spans lines only makes the count err on the safe side, and no
			// quote the scan mistook (an apostrophe in a block scalar) can
			// hide the lines after it
			line++
			comment, quote = false, 0
			continue
		}
		switch {
		case comment:
		case quote == '"':
			if c == '\\' && i+1 < len(data) && data[i+1] != '\n' {
				// skip the escaped byte on the next turn
				quote = 'e'
			} else if c == '"' {
				quote = 0
			}
		case quote == 'e':
			quote = '"'
		case quote == '\'':
			if c == '\'' {
				quote = 0 // '' inside a single-quoted scalar reopens at once
			}
		case c == '#' && (i == 0 || data[i-1] == ' ' || data[i-1] == '\t' || data[i-1] == '\n'):
			comment = true
		case (c == '"' || c == '\'') && (i == 0 || startsScalar(data[i-1])):
			quote = c
		case c == '[' || c == '{':
			depth++
			if depth > max {
				return line, false
			}
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return 0, true
}

// startsScalar reports whether a quote after b can open a quoted scalar.
func startsScalar(b byte) bool {
	switch b {
	case ' ', '\t', '\n', ':', '[', '{', ',', '-', '?':
		return true
	}
	return false
}
