package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/kubeplay/kubeplay/secret"
)

type stringer string

func (s stringer) String() string { return string(s) }

// Every kind of zap field that carries text is redacted, zap.Error among
// them.
func TestLogRedactsEveryTextField(t *testing.T) {
	const tok = "tok-0123456789"
	r := secret.NewRedactor()
	r.Add(tok)
	var buf bytes.Buffer
	log := newLogger(&buf, r)
	log.With(zap.Error(errors.New("with "+tok))).Info("msg "+tok,
		zap.String("s", tok), zap.Error(errors.New("dial: "+tok)), zap.NamedError("e2", errors.New(tok)),
		zap.Stringer("st", stringer(tok)), zap.ByteString("b", []byte(tok)))
	_ = log.Sync()
	if strings.Contains(buf.String(), tok) || strings.Count(buf.String(), secret.Redacted) < 7 {
		t.Fatalf("log leaks or lost fields: %s", buf.String())
	}
}
