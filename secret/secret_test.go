package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestStringNeverPrints(t *testing.T) {
	s := New("hunter2-value")
	b, _ := json.Marshal(map[string]any{"pw": s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), string(b)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "hunter2-value" {
		t.Fatal("Reveal must return the value")
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor()
	r.Add("token-abc", "token-abc-longer", "ab")
	got := r.Redact("x token-abc-longer y token-abc z ab")
	if got != "x [REDACTED] y [REDACTED] z ab" {
		t.Fatalf("got %q (longest first, too-short values ignored)", got)
	}
	var nilR *Redactor
	if nilR.Redact("same") != "same" {
		t.Fatal("a nil redactor passes text through")
	}
}

func FuzzRedactorMasksEveryOccurrence(f *testing.F) {
	f.Add("s3cr3t", "before s3cr3t after s3cr3ts3cr3t")
	f.Fuzz(func(t *testing.T, value, text string) {
		// values that could be spelled by the mask itself ([REDACTED]) are
		// out of scope: the mask, not the secret, would match
		if len(value) < 3 || strings.ContainsAny(value, "[]ACDERT") {
			return
		}
		r := NewRedactor()
		r.Add(value)
		if out := r.Redact(text + value + text); strings.Contains(out, value) {
			t.Fatalf("value %q survives in %q", value, out)
		}
	})
}
