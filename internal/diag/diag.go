// Package diag collects located validation errors (file:line:col plus a
// source snippet) so that every problem in a file is reported at once.
package diag

import (
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/printer"
	"github.com/goccy/go-yaml/token"

	"github.com/kubeplay/kubeplay/failure"
)

// Diag is one located problem.
type Diag struct {
	File    string
	Line    int
	Col     int
	Msg     string
	Snippet string
}

func (d Diag) String() string {
	loc := d.File
	if d.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Col)
	}
	s := fmt.Sprintf("%s: %s", loc, d.Msg)
	if d.Snippet != "" {
		s += "\n" + d.Snippet
	}
	return s
}

// List accumulates diagnostics for one file.
type List struct {
	File  string
	Diags []Diag
}

// At records a problem at tok (nil: the file as a whole).
func (l *List) At(tok *token.Token, format string, args ...any) {
	d := Diag{File: l.File, Msg: fmt.Sprintf(format, args...)}
	if tok != nil && tok.Position != nil {
		d.Line, d.Col = tok.Position.Line, tok.Position.Column
		var p printer.Printer
		d.Snippet = strings.TrimRight(p.PrintErrorToken(tok, false), "\n")
	}
	l.Diags = append(l.Diags, d)
}

// Len is the number of problems recorded.
func (l *List) Len() int { return len(l.Diags) }

// Err returns nil when nothing was recorded, else an *Error.
func (l *List) Err() error {
	if len(l.Diags) == 0 {
		return nil
	}
	ds := append([]Diag(nil), l.Diags...)
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Col < ds[j].Col
	})
	return &Error{Diags: ds}
}

// Error is a set of validation problems. It matches failure.ErrValidation.
type Error struct {
	Diags []Diag
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		parts[i] = d.String()
	}
	return fmt.Sprintf("%d problem(s):\n%s", len(e.Diags), strings.Join(parts, "\n"))
}

// Unwrap classifies the error as a validation failure.
func (e *Error) Unwrap() error { return failure.ErrValidation }
