// Package secret holds the types that keep secret values out of logs, errors,
// journals, plans and remote command lines.
package secret

import (
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap/zapcore"
)

// Redacted is what a secret prints as.
const Redacted = "[REDACTED]"

// String is a secret string. Every formatting path prints Redacted; the
// value is only reachable through Reveal.
type String struct{ v string }

// New wraps a value.
func New(v string) String { return String{v: v} }

// Reveal returns the plaintext. Call it only where the value leaves for its
// destination (stdin of a remote process, a 0600 file).
func (s String) Reveal() string { return s.v }

func (s String) String() string   { return Redacted }
func (s String) GoString() string { return Redacted }

// MarshalText keeps secrets out of JSON and YAML output.
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalLogObject keeps secrets out of zap logs.
func (s String) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("secret", Redacted)
	return nil
}

// Redactor masks known secret values in text as defence in depth: whatever
// path a value takes into a message, it is replaced before output.
type Redactor struct {
	mu     sync.RWMutex
	values []string
	r      *strings.Replacer
}

// NewRedactor returns an empty redactor.
func NewRedactor() *Redactor { return &Redactor{} }

// Add registers values to mask. Empty and very short values are ignored
// (masking "a" would destroy all output without protecting anything).
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		if len(v) < 3 {
			continue
		}
		r.values = append(r.values, v)
	}
	// longest first so a secret containing another is masked whole
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
	pairs := make([]string, 0, 2*len(r.values))
	for _, v := range r.values {
		pairs = append(pairs, v, Redacted)
	}
	r.r = strings.NewReplacer(pairs...)
}

// Redact masks every registered value in s.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}
