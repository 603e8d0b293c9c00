// Package secret holds the types that keep secret values out of logs, errors,
// journals, plans and remote command lines.
package secret

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
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

// MinLen is the shortest secret kubeplay accepts: a shorter one cannot be
// masked in output without destroying it ("a" is in every word), so the
// places secrets come from (params, the become password) refuse it.
const MinLen = 3

// ErrTooShort is a secret shorter than MinLen.
var ErrTooShort = fmt.Errorf("a secret must be at least %d characters: a shorter one could not be masked in output", MinLen)

// Check refuses a non-empty secret that could not be masked.
func Check(v string) error {
	if v != "" && len(v) < MinLen {
		return ErrTooShort
	}
	return nil
}

// Add registers values to mask, each with the forms it takes when a
// command or a module encodes it: base64 (standard, unpadded, URL), JSON
// string escaping and URL escaping. Empty and very short values are
// ignored (masking "a" would destroy all output without protecting
// anything; Check refuses them where secrets come in).
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, v := range r.values {
		seen[v] = true
	}
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		for _, f := range encodings(v) {
			if len(f) >= MinLen && !seen[f] {
				seen[f] = true
				r.values = append(r.values, f)
			}
		}
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

// encodings is v and the encoded forms it is masked in as well.
func encodings(v string) []string {
	out := []string{v,
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		url.QueryEscape(v),
		url.PathEscape(v),
	}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1])) // the escaped text between the quotes
	}
	return out
}

// RedactError wraps err so that its text is masked by r wherever it is
// printed; errors.Is and errors.As see through it. Nil stays nil.
func RedactError(r *Redactor, err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, r: r}
}

type redactedError struct {
	err error
	r   *Redactor
}

func (e *redactedError) Error() string { return e.r.Redact(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
