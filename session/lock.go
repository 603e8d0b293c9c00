package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/lock"
)

// LockOptions say how a run takes the cluster lock.
type LockOptions struct {
	Skip  bool          // take no lock (--no-lock)
	Break bool          // take over a lock whose heartbeat stopped
	TTL   time.Duration // how long the lock outlives its last heartbeat
}

// takeLock takes the cluster lock for a run, recording a takeover.
func takeLock(ctx context.Context, kube kubernetes.Interface, runID, resuming string, o LockOptions, sink events.Sink) (*lock.Lock, error) {
	h := lock.Holder{RunID: runID, PID: os.Getpid(), User: "unknown", Host: "unknown"}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	if n, err := os.Hostname(); err == nil {
		h.Host = n
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lk, err := lock.Acquire(lctx, kube, h, lock.Options{TTL: o.TTL, Break: o.Break, Resuming: resuming, Gone: processGone(h)})
	if err != nil {
		return nil, fmt.Errorf("%w (dry runs with --check take no lock; --no-lock skips it for playbooks that never touch the cluster)", err)
	}
	msg := "LOCK " + lock.Namespace + "/" + lock.Name + " taken"
	switch {
	case lk.Resumed:
		msg += " over from " + lk.TakenFrom + " (the run this one resumes; it is gone)"
	case lk.TakenFrom != "":
		msg += " over from " + lk.TakenFrom + " (its heartbeat had stopped)"
	}
	sink.Emit(events.Event{Type: events.Lock, Run: runID, Time: time.Now(), Msg: msg})
	return lk, nil
}

// processGone tells, for a lock holder on this machine (user@host as
// this run's holder is), whether its process has ended. On another
// machine it cannot tell.
func processGone(self lock.Holder) func(holder string, pid int) bool {
	return func(holder string, pid int) bool {
		if holder != self.User+"@"+self.Host || pid <= 0 {
			return false
		}
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
}
