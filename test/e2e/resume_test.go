package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/test/lab"
)

// buildCLI builds the kubeplay binary for tests that must kill it.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubeplay")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/kubeplay/kubeplay/cmd/kubeplay")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// journalEvents reads a run's events.jsonl so far.
func journalEvents(path string) []events.Event {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	evs, _ := events.ReadJournal(f)
	return evs
}

// The process is killed (SIGKILL: no rollback, no lock release) while the
// second worker is drained. Another run is refused by the lock it left;
// --resume takes that lock over at once (its process is gone), finishes the
// run without draining the first worker again, and every node ends
// schedulable.
func TestKilledRunResumes(t *testing.T) {
	l := lab.Start(t)
	c := kube(t, l)
	lab.Workload(t, c, "resume", 2, 1)
	bin := buildCLI(t)
	state := t.TempDir()
	common := []string{"-i", l.InventoryFile(), "--known-hosts", l.KnownHostsFile(), "--kubeconfig", l.KubeconfigFile(),
		"--state-dir", state, "--lock-ttl", "4s"}
	args := append([]string{"run", "node-maintenance", "-e", "hosts=workers", "-e", "command=sleep 5"}, common...)
	first := exec.Command(bin, args...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	// wait for w2's drain to finish, then kill
	var runID string
	deadline := time.Now().Add(3 * time.Minute)
	for runID == "" {
		if time.Now().After(deadline) {
			t.Fatal("w2 was never drained")
		}
		time.Sleep(200 * time.Millisecond)
		dirs, _ := filepath.Glob(filepath.Join(state, "runs", "*"))
		if len(dirs) != 1 {
			continue
		}
		for _, e := range journalEvents(filepath.Join(dirs[0], "events.jsonl")) {
			if e.Type == events.HostEnd && e.Step == "drain" && e.Host == "w2" && e.Outcome == events.Changed {
				runID = filepath.Base(dirs[0])
			}
		}
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	ctx := context.Background()
	if n, _ := c.CoreV1().Nodes().Get(ctx, "w2", metav1.GetOptions{}); !n.Spec.Unschedulable {
		t.Fatal("w2 should be left cordoned by the killed run")
	}

	// the killed run's lock is still there, fresh: another run is refused,
	// and the resume of the killed run (whose process is gone) takes it
	out, err := exec.Command(bin, args...).CombinedOutput()
	if code := exitCode(err); code != 4 {
		t.Fatalf("the killed run's lock must refuse another run while fresh (exit %d): %s", code, out)
	}
	w1Cordoned := make(chan bool, 1)
	stop := make(chan struct{})
	go func() {
		seen := false
		for {
			select {
			case <-stop:
				w1Cordoned <- seen
				return
			case <-time.After(200 * time.Millisecond):
			}
			if n, err := c.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{}); err == nil && n.Spec.Unschedulable {
				seen = true
			}
		}
	}()
	out, err = exec.Command(bin, append([]string{"run", "--resume", runID}, common...)...).CombinedOutput()
	close(stop)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if <-w1Cordoned {
		t.Error("the resumed run drained w1 again")
	}
	if !strings.Contains(string(out), "resumes run "+runID) || !strings.Contains(string(out), "the run this one resumes; it is gone") {
		t.Errorf("the resume must say what it resumes and that it took over its lock:\n%s", out)
	}
	for _, n := range []string{"w1", "w2"} {
		if node, _ := c.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{}); node.Spec.Unschedulable {
			t.Errorf("%s is still cordoned", n)
		}
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
