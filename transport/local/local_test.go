package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// alive reports whether pid runs (a zombie, which nothing may reap here,
// does not count).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// bgPID starts a command whose background child writes its pid to a file,
// runs it under ctx, and returns what Exec returned and the child's pid.
func bgPID(t *testing.T, ctx context.Context, rest string) (transport.ExecResult, error, int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	r, err := Conn{}.Exec(ctx, transport.Cmd{Shell: `sleep 30 & echo $! > ` + pidFile + `; ` + rest})
	b, rerr := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if rerr != nil || perr != nil {
		t.Fatalf("the background child's pid: %v %v", rerr, perr)
	}
	return r, err, pid
}

// A timeout ends the command and its children at once, with an unknown
// outcome (the command may have done part of its work).
func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	// the child outlives its shell unless the whole group is killed
	_, err, pid := bgPID(t, ctx, `sleep 30; echo done`)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Exec returned after %s: the command was not ended", took)
	}
	if !errors.Is(err, failure.ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want an unknown outcome from the deadline, got %v", err)
	}
	for deadline := time.Now().Add(3 * time.Second); alive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("a child of the command survived the timeout")
		}
	}
}

// A command that exits leaving a background job holding its output is done
// (after the grace period), and the job is left to run.
func TestExecLeavesBackgroundJobsOfAFinishedCommand(t *testing.T) {
	start := time.Now()
	r, err, pid := bgPID(t, context.Background(), `echo started`)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if err != nil || r.RC != 0 || r.Stdout != "started\n" {
		t.Fatalf("%+v %v", r, err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("took %s", d)
	}
	if !alive(pid) {
		t.Fatal("the background job of a finished command was killed")
	}
}
