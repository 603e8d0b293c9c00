package lock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeplay/kubeplay/failure"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSecondRunIsRefusedWithTheHolder(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	c := &clock{time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	a, err := Acquire(ctx, kube, Holder{RunID: "run-a", User: "ops", Host: "bastion", PID: 42}, Options{TTL: time.Minute, Renew: time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(30 * time.Second)
	_, err = Acquire(ctx, kube, Holder{RunID: "run-b", User: "dev", Host: "laptop", PID: 7}, Options{TTL: time.Minute, Now: c.now, Break: true})
	var held *HeldError
	if !errors.As(err, &held) || held.Stale || !errors.Is(err, failure.ErrLockHeld) {
		t.Fatalf("want a live HeldError, got %v", err)
	}
	if !strings.Contains(err.Error(), "ops@bastion pid 42 run run-a") || !strings.Contains(err.Error(), "taken 30s ago") {
		t.Fatalf("the refusal must name the holder and age: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{}); err == nil {
		t.Fatal("release must remove the lease")
	}
	b, err := Acquire(ctx, kube, Holder{RunID: "run-b", User: "dev", Host: "laptop", PID: 7}, Options{TTL: time.Minute, Renew: time.Hour, Now: c.now})
	if err != nil {
		t.Fatalf("a released lock is free: %v", err)
	}
	b.Release(ctx)
}

func TestStaleLockNeedsBreakLockAndIsRecorded(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	c := &clock{time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	// a run that died: it never renews (renew period far beyond the test)
	if _, err := Acquire(ctx, kube, Holder{RunID: "dead", User: "ops", Host: "bastion", PID: 1}, Options{TTL: time.Minute, Renew: time.Hour, Now: c.now}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(5 * time.Minute)
	h := Holder{RunID: "new", User: "ops", Host: "bastion", PID: 2}
	_, err := Acquire(ctx, kube, h, Options{TTL: time.Minute, Now: c.now})
	var held *HeldError
	if !errors.As(err, &held) || !held.Stale || !strings.Contains(err.Error(), "--break-lock") {
		t.Fatalf("a stale lock is refused without --break-lock: %v", err)
	}
	l, err := Acquire(ctx, kube, h, Options{TTL: time.Minute, Renew: time.Hour, Now: c.now, Break: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if !strings.Contains(l.TakenFrom, "run dead") {
		t.Fatalf("TakenFrom %q", l.TakenFrom)
	}
	lease, _ := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
	if lease.Annotations[AnnTakenFrom] != l.TakenFrom || lease.Annotations[AnnRunID] != "new" || *lease.Spec.HolderIdentity != h.identity() {
		t.Fatalf("lease after takeover: %v %v", lease.Annotations, *lease.Spec.HolderIdentity)
	}
}

func TestHeartbeatKeepsTheLockAndNoticesATakeover(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	l, err := Acquire(ctx, kube, Holder{RunID: "a", User: "u", Host: "h", PID: 1}, Options{TTL: 4 * time.Second, Renew: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		cur, _ := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
		if cur.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat never renewed the lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// someone breaks the lock: the holder notices
	cur, _ := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
	other := "x@y pid 9 run b"
	cur.Spec.HolderIdentity = &other
	cur.Annotations[AnnRunID] = "b"
	kube.CoordinationV1().Leases(Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	select {
	case <-l.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("a taken lock must be reported lost")
	}
	l.Release(ctx)
	if _, err := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("releasing a lost lock must leave the new holder's lease: %v", err)
	}
}

// A resume takes over the lock its own killed run left, at once when its
// process is gone and after the TTL otherwise; another run's live lock
// still refuses it, and the takeover is recorded.
func TestResumeTakesOverItsOwnKilledRunsLock(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	dead := func(holder string, pid int) bool { return holder == "ops@bastion" && pid == 41 }
	for _, tc := range []struct {
		name      string
		killedPID int
		resuming  string
		after     time.Duration
		wantTaken bool
	}{
		{"own run, process gone", 41, "killed", 5 * time.Second, true},
		{"own run, process alive, heartbeat fresh", 42, "killed", 5 * time.Second, false},
		{"own run, process alive, heartbeat stale", 42, "killed", 5 * time.Minute, true},
		{"another run's lock, process gone", 41, "other", 5 * time.Second, false},
		{"not a resume", 41, "", 5 * time.Second, false},
	} {
		kube := fake.NewClientset()
		if _, err := Acquire(ctx, kube, Holder{RunID: "killed", User: "ops", Host: "bastion", PID: tc.killedPID}, Options{TTL: time.Minute, Renew: time.Hour, Now: c.now}); err != nil {
			t.Fatal(err)
		}
		now := &clock{c.t.Add(tc.after)}
		l, err := Acquire(ctx, kube, Holder{RunID: "resume", User: "ops", Host: "bastion", PID: 99},
			Options{TTL: time.Minute, Renew: time.Hour, Now: now.now, Resuming: tc.resuming, Gone: dead})
		if !tc.wantTaken {
			if !errors.Is(err, failure.ErrLockHeld) {
				t.Errorf("%s: want refused, got %v", tc.name, err)
			}
			continue
		}
		if err != nil || !strings.Contains(l.TakenFrom, "run killed") || !l.Resumed {
			t.Errorf("%s: want taken over from the killed run, got %v (%v)", tc.name, err, l)
			continue
		}
		lease, _ := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
		if !strings.Contains(lease.Annotations[AnnTakenFrom], "run killed") || lease.Annotations[AnnRunID] != "resume" {
			t.Errorf("%s: takeover not recorded: %v", tc.name, lease.Annotations)
		}
		l.Release(ctx)
	}
}
