package session

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/secret"
)

// logSink writes every event to the zap log with play/step/host fields.
type logSink struct{ log *zap.Logger }

func (l logSink) Emit(e events.Event) {
	fields := []zap.Field{zap.String("type", string(e.Type)), zap.Int64("seq", e.Seq)}
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, zap.String(k, v))
		}
	}
	add("play", e.Play)
	add("step", e.Step)
	add("host", e.Host)
	add("module", e.Module)
	add("outcome", string(e.Outcome))
	add("msg", e.Msg)
	add("error", e.Error)
	if e.Attempt > 0 {
		fields = append(fields, zap.Int("attempt", e.Attempt))
	}
	if e.Duration > 0 {
		fields = append(fields, zap.Duration("duration", e.Duration))
	}
	l.log.Info("event", fields...)
}

// newLogger builds the per-run JSON log; the redacting core masks secret
// values in messages and string fields as defence in depth.
func newLogger(w io.Writer, r *secret.Redactor) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.DebugLevel)
	return zap.New(&redactCore{Core: core, r: r})
}

type redactCore struct {
	zapcore.Core
	r *secret.Redactor
}

func (c *redactCore) With(fields []zapcore.Field) zapcore.Core {
	return &redactCore{Core: c.Core.With(c.redact(fields)), r: c.r}
}

func (c *redactCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *redactCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.r.Redact(e.Message)
	return c.Core.Write(e, c.redact(fields))
}

func (c *redactCore) redact(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			f.String = c.r.Redact(f.String)
		case zapcore.ErrorType, zapcore.StringerType:
			// zap.Error and zap.Stringer render their text only when
			// encoded: render it here, redacted
			if f.Interface != nil {
				f = zap.String(f.Key, c.r.Redact(fmt.Sprint(f.Interface)))
			}
		case zapcore.ByteStringType:
			f = zap.String(f.Key, c.r.Redact(string(f.Interface.([]byte))))
		}
		out[i] = f
	}
	return out
}
