package secret

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
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

// The forms a secret takes when a command or module encodes it are masked
// too.
func TestRedactorMasksEncodedForms(t *testing.T) {
	v := `p@ss "w/rd"+1`
	r := NewRedactor()
	r.Add(v)
	b, _ := json.Marshal(map[string]string{"pw": v})
	for _, text := range []string{
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		url.QueryEscape(v),
		url.PathEscape(v),
		string(b),
	} {
		if out := r.Redact("x " + text + " y"); strings.Contains(out, text) || !strings.Contains(out, Redacted) {
			t.Errorf("%q survives: %q", text, out)
		}
	}
}

func TestCheckRefusesSecretsTooShortToMask(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "a": false, "ab": false, "abc": true} {
		if err := Check(v); (err == nil) != ok {
			t.Errorf("Check(%q) = %v", v, err)
		}
	}
}
