package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/lock"
	"github.com/kubeplay/kubeplay/test/lab"
)

// The lock against the lab's real API server: a run is refused while
// another holds the lock, dry runs are not, a stale lock needs --break-lock,
// and a finished run leaves no lease behind.
func TestClusterLock(t *testing.T) {
	l := lab.Start(t)
	kube, err := l.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	leases := kube.CoordinationV1().Leases(lock.Namespace)
	leases.Delete(ctx, lock.Name, metav1.DeleteOptions{})
	t.Cleanup(func() { leases.Delete(context.Background(), lock.Name, metav1.DeleteOptions{}) })
	args := func(extra ...string) []string {
		return append([]string{"run", "version-skew", "-e", "current=1.36.3", "-e", "target=1.37.2",
			"--state-dir", t.TempDir(), "--kubeconfig", l.KubeconfigFile()}, extra...)
	}

	// another run that dies right after taking the lock: it never renews
	// (renew period far beyond the test), so it goes stale after its TTL
	_, err = lock.Acquire(ctx, kube, lock.Holder{RunID: "other-run", User: "alice", Host: "bastion", PID: 4242}, lock.Options{TTL: 5 * time.Second, Renew: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	out, code := run(t, append(args(), "--state-dir", state)...)
	if code != failure.ExitLockHeld || !strings.Contains(out, "alice@bastion pid 4242 run other-run") {
		t.Fatalf("a second run must be refused naming the holder (exit %d): %s", code, out)
	}
	if runs, _ := filepath.Glob(filepath.Join(state, "runs", "*")); len(runs) != 0 {
		t.Fatalf("a refused run leaves no run directory: %v", runs)
	}
	if out, code := run(t, args("--check")...); code != 0 {
		t.Fatalf("a dry run takes no lock (exit %d): %s", code, out)
	}

	// once stale, only --break-lock takes it
	time.Sleep(6 * time.Second)
	out, code = run(t, args()...)
	if code != failure.ExitLockHeld || !strings.Contains(out, "--break-lock") {
		t.Fatalf("a stale lock needs --break-lock (exit %d): %s", code, out)
	}
	out, code = run(t, args("--break-lock")...)
	if code != 0 || !strings.Contains(out, "over from alice@bastion pid 4242 run other-run") {
		t.Fatalf("--break-lock takes over and says so (exit %d): %s", code, out)
	}
	if _, err := leases.Get(ctx, lock.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the run released the lock at its end: %v", err)
	}
}
