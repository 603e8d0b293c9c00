package output

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
)

func TestRollbackLineSaysWhetherItUndid(t *testing.T) {
	var b bytes.Buffer
	v := NewText(&b, false, false)
	v.Emit(events.Event{Type: events.RollbackEnd, Host: "w1", Step: "drain", Outcome: events.RolledBack})
	v.Emit(events.Event{Type: events.RollbackEnd, Host: "w2", Step: "drain", Outcome: events.Failed, Error: "uncordon: forbidden"})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "w1 undid [drain]") ||
		!strings.Contains(lines[1], "w2 could not undo [drain] uncordon: forbidden") || strings.Contains(lines[1], "undid") {
		t.Fatalf("%q", lines)
	}
}
