// Package lock keeps two kubeplay runs from changing one cluster at the same
// time: a coordination.k8s.io Lease (kube-system/kubeplay-lock) names the
// run that holds it and carries its heartbeat. A run whose heartbeat stopped
// (its runner died) leaves a stale lock, which only an explicit takeover
// (--break-lock) may claim; the takeover is recorded on the Lease.
package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/failure"
)

// Where the lock lives.
const (
	Namespace = "kube-system"
	Name      = "kubeplay-lock"
)

// Annotations on the Lease.
const (
	AnnRunID     = "kubeplay.io/run-id"
	AnnHolder    = "kubeplay.io/holder" // user@host
	AnnPID       = "kubeplay.io/pid"
	AnnTakenFrom = "kubeplay.io/taken-over-from"
)

// Holder identifies a run.
type Holder struct {
	RunID string
	User  string
	Host  string
	PID   int
}

func (h Holder) identity() string {
	return fmt.Sprintf("%s@%s pid %d run %s", h.User, h.Host, h.PID, h.RunID)
}

// Options tune the lock.
type Options struct {
	// TTL is how long a heartbeat stays valid; a lock not renewed for TTL is
	// stale. Default 60s.
	TTL time.Duration
	// Renew is the heartbeat period. Default TTL/4.
	Renew time.Duration
	// Break takes over a stale lock.
	Break bool
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Resuming is the id of the run this one resumes. A lock that run
	// still holds is taken over without Break when that run is gone: its
	// heartbeat stopped, or Gone says its process no longer exists. A
	// different run's lock is never taken this way.
	Resuming string
	// Gone reports whether the process pid on host (user@host) has
	// ended; nil, or false, when it cannot tell (another machine).
	Gone func(holder string, pid int) bool
}

// HeldError describes the run holding the lock.
type HeldError struct {
	Holder string        // user@host pid run
	Age    time.Duration // since the lock was taken
	Since  time.Duration // since the last heartbeat
	Stale  bool
}

func (e *HeldError) Error() string {
	if e.Stale {
		return fmt.Sprintf("cluster lock %s/%s is held by %s (taken %s ago) but its heartbeat stopped %s ago: the run is probably dead; take it over with --break-lock",
			Namespace, Name, e.Holder, e.Age.Round(time.Second), e.Since.Round(time.Second))
	}
	return fmt.Sprintf("cluster lock %s/%s is held by %s, taken %s ago, last heartbeat %s ago",
		Namespace, Name, e.Holder, e.Age.Round(time.Second), e.Since.Round(time.Second))
}

// Unwrap classifies the error for exit codes.
func (e *HeldError) Unwrap() error { return failure.ErrLockHeld }

// Lock is a held lock.
type Lock struct {
	kube   kubernetes.Interface
	holder Holder
	opts   Options
	// TakenFrom names the holder of a stale lock this run took over ("" if none).
	TakenFrom string
	// Resumed says the lock taken over was the resumed run's (Resuming).
	Resumed bool

	stop chan struct{}
	done chan struct{}
	lost chan struct{}
}

// Acquire takes the lock or reports who holds it.
func Acquire(ctx context.Context, kube kubernetes.Interface, h Holder, o Options) (*Lock, error) {
	if o.TTL <= 0 {
		o.TTL = 60 * time.Second
	}
	if o.Renew <= 0 {
		o.Renew = o.TTL / 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Lock{kube: kube, holder: h, opts: o, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{})}
	leases := kube.CoordinationV1().Leases(Namespace)
	for attempt := 0; attempt < 5; attempt++ {
		cur, err := leases.Get(ctx, Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err := leases.Create(ctx, l.fresh(nil, ""), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // another run was faster: look again
			}
			if err != nil {
				return nil, fmt.Errorf("create lock %s/%s: %w", Namespace, Name, err)
			}
		case err != nil:
			return nil, fmt.Errorf("read lock %s/%s: %w", Namespace, Name, err)
		default:
			taken, resumed := "", false
			if holder := holderOf(cur); holder != "" {
				held := l.held(cur)
				resumed = l.resumable(cur, held)
				if !(held.Stale && o.Break) && !resumed {
					return nil, held
				}
				taken = holder
			}
			_, err := leases.Update(ctx, l.fresh(cur, taken), metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				continue // changed under us: decide again on the new state
			}
			if err != nil {
				return nil, fmt.Errorf("take lock %s/%s: %w", Namespace, Name, err)
			}
			l.TakenFrom, l.Resumed = taken, resumed
		}
		go l.heartbeat()
		return l, nil
	}
	return nil, fmt.Errorf("take lock %s/%s: %w", Namespace, Name, failure.Retryable(errors.New("the lock kept changing under us")))
}

// resumable reports whether cur is held by the run being resumed, and that
// run is gone.
func (l *Lock) resumable(cur *coordv1.Lease, held *HeldError) bool {
	if l.opts.Resuming == "" || cur.Annotations[AnnRunID] != l.opts.Resuming {
		return false
	}
	if held.Stale {
		return true
	}
	pid, err := strconv.Atoi(cur.Annotations[AnnPID])
	return err == nil && l.opts.Gone != nil && l.opts.Gone(cur.Annotations[AnnHolder], pid)
}

func holderOf(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// held describes the current holder.
func (l *Lock) held(cur *coordv1.Lease) *HeldError {
	now := l.opts.Now()
	e := &HeldError{Holder: holderOf(cur)}
	if cur.Spec.AcquireTime != nil {
		e.Age = now.Sub(cur.Spec.AcquireTime.Time)
	}
	ttl := l.opts.TTL
	if cur.Spec.LeaseDurationSeconds != nil {
		ttl = time.Duration(*cur.Spec.LeaseDurationSeconds) * time.Second
	}
	if cur.Spec.RenewTime != nil {
		e.Since = now.Sub(cur.Spec.RenewTime.Time)
	}
	e.Stale = cur.Spec.RenewTime == nil || e.Since > ttl
	return e
}

// fresh is the Lease as this run holds it, based on cur (nil to create).
func (l *Lock) fresh(cur *coordv1.Lease, takenFrom string) *coordv1.Lease {
	lease := &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace}}
	if cur != nil {
		lease = cur.DeepCopy()
	}
	now := metav1.NewMicroTime(l.opts.Now())
	id := l.holder.identity()
	ttl := int32(l.opts.TTL / time.Second)
	lease.Spec.HolderIdentity = &id
	lease.Spec.LeaseDurationSeconds = &ttl
	lease.Spec.AcquireTime = &now
	lease.Spec.RenewTime = &now
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[AnnRunID] = l.holder.RunID
	lease.Annotations[AnnHolder] = l.holder.User + "@" + l.holder.Host
	lease.Annotations[AnnPID] = strconv.Itoa(l.holder.PID)
	delete(lease.Annotations, AnnTakenFrom)
	if takenFrom != "" {
		lease.Annotations[AnnTakenFrom] = takenFrom
	}
	return lease
}

// heartbeat renews the lease until Release. If the lease stops being ours
// (someone broke it), Lost is closed.
func (l *Lock) heartbeat() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Renew)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		// other errors are transient: the lock stays valid for TTL and the
		// next tick tries again
		if err := l.renew(); errors.Is(err, errLost) {
			close(l.lost)
			return
		}
	}
}

var errLost = errors.New("the cluster lock was taken by another run")

func (l *Lock) renew() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Renew)
	defer cancel()
	cur, err := l.current(ctx)
	if err != nil {
		return err
	}
	now := metav1.NewMicroTime(l.opts.Now())
	cur.Spec.RenewTime = &now
	_, err = l.kube.CoordinationV1().Leases(Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // changed since the read: the next tick looks again
	}
	if err != nil {
		return fmt.Errorf("renew cluster lock: %w", err)
	}
	return nil
}

// current reads the Lease and checks that this run still holds it.
func (l *Lock) current(ctx context.Context) (*coordv1.Lease, error) {
	cur, err := l.kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errLost
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster lock: %w", err)
	}
	if cur.Annotations[AnnRunID] != l.holder.RunID || holderOf(cur) != l.holder.identity() {
		return nil, errLost
	}
	return cur, nil
}

// Lost is closed when another run took the lock from this one.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Release stops the heartbeat and deletes the Lease if it is still this
// run's (a lock taken over by someone else is left to them).
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	cur, err := l.current(ctx)
	if errors.Is(err, errLost) {
		return nil
	}
	if err != nil {
		return err
	}
	err = l.kube.CoordinationV1().Leases(Namespace).Delete(ctx, Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("release cluster lock: %w", err)
	}
	return nil
}
