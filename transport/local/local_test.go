package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport"
)

func TestExec(t *testing.T) {
	ctx := context.Background()
	r, err := Conn{}.Exec(ctx, transport.Cmd{Shell: "echo out; echo err >&2; exit 3"})
	if err != nil || r.RC != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = Conn{}.Exec(ctx, transport.Cmd{Argv: []string{"sh", "-c", `cat; printf %s "$TOKEN"`},
		Stdin: strings.NewReader("in:"), Env: map[string]secret.String{"TOKEN": secret.New("tok")}})
	if err != nil || r.Stdout != "in:tok" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := (Conn{}).Exec(ctx, transport.Cmd{Argv: []string{"/nonexistent/x"}}); err == nil {
		t.Fatal("missing binary should be an error")
	}
}

// A timeout ends the command and its children at once, with an unknown
// outcome (the command may have done part of its work).
func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "child-alive")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	// the child outlives its shell unless the whole group is killed
	_, err := Conn{}.Exec(ctx, transport.Cmd{Shell: `(sleep 3; touch ` + marker + `) & sleep 30; echo done`})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Exec returned after %s: the command was not ended", took)
	}
	if !errors.Is(err, failure.ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want an unknown outcome from the deadline, got %v", err)
	}
	time.Sleep(3500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a child of the command survived the timeout")
	}
}

// A command that exits leaving a background job holding its output is done
// (after the grace period), and the job is left to run.
func TestExecLeavesBackgroundJobsOfAFinishedCommand(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "job-ran")
	start := time.Now()
	r, err := Conn{}.Exec(context.Background(), transport.Cmd{Shell: `(sleep 3; touch ` + marker + `) & echo started`})
	if err != nil || r.RC != 0 || r.Stdout != "started\n" {
		t.Fatalf("%+v %v", r, err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("took %s", d)
	}
	time.Sleep(3500 * time.Millisecond)
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the background job of a finished command was killed")
	}
}
