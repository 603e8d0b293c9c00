package events

import (
	"errors"
	"strings"
	"testing"
)

func TestReadJournalTellsACrashFromDamage(t *testing.T) {
	ok := `{"seq":1,"type":"run.start"}` + "\n" + `{"seq":2,"type":"host.end"}` + "\n"
	for name, text := range map[string]string{
		"clean":                 ok,
		"last line cut":         ok + `{"seq":3,"type":"ho`,
		"last line cut with \n": ok + `{"seq":3,"type":"ho` + "\n",
	} {
		evs, err := ReadJournal(strings.NewReader(text))
		if err != nil || len(evs) != 2 {
			t.Errorf("%s: %d events, %v", name, len(evs), err)
		}
	}
	damaged := `{"seq":1,"type":"run.start"}` + "\n" + `garbage` + "\n" + `{"seq":3,"type":"run.end","outcome":"ok"}` + "\n"
	evs, err := ReadJournal(strings.NewReader(damaged))
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "line 2") || len(evs) != 1 {
		t.Fatalf("damage mid-file: %d events, %v", len(evs), err)
	}
	// a line longer than the old 16 MiB scanner limit is read
	big := `{"seq":1,"type":"host.end","msg":"` + strings.Repeat("a", 17<<20) + `"}` + "\n"
	if evs, err := ReadJournal(strings.NewReader(big + ok)); err != nil || len(evs) != 3 {
		t.Fatalf("a 17 MiB line: %d events, %v", len(evs), err)
	}
}

func TestBoundKeepsTheTail(t *testing.T) {
	long := strings.Repeat("x", MaxText+100) + "the error"
	e := Event{Msg: long, Result: map[string]any{"stdout": long, "data": map[string]any{"l": []any{long, "short"}}}}
	e.Bound()
	if e.Cut != 3*int64(len(long)-MaxText) {
		t.Fatalf("cut %d", e.Cut)
	}
	for _, s := range []string{e.Msg, e.Result["stdout"].(string), e.Result["data"].(map[string]any)["l"].([]any)[0].(string)} {
		if !strings.HasSuffix(s, "the error") || !strings.HasPrefix(s, "[kubeplay: 109 bytes cut]") || len(s) > MaxText+64 {
			t.Fatalf("bounded text %.60q... (%d bytes)", s, len(s))
		}
	}
	if e.Result["data"].(map[string]any)["l"].([]any)[1] != "short" {
		t.Fatal("a short text changed")
	}
}
