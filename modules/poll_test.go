package modules

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// stepClock advances by each wait at once and records the waits.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func TestPoll(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name      string
		spec      pollSpec
		doneAt    int // the look (1-based) that reports done; 0: never
		failAt    int // the look that returns boom; 0: never
		wantLooks int // looks made
		wantWaits []time.Duration
		wantErr   error // nil, boom, or a *NotDone (matched by type and fields)
	}{
		{name: "done at once", spec: pollSpec{Timeout: time.Minute, Interval: time.Second}, doneAt: 1, wantLooks: 1},
		{name: "done on the third look", spec: pollSpec{Timeout: time.Minute, Interval: time.Second}, doneAt: 3, wantLooks: 3,
			wantWaits: []time.Duration{time.Second, time.Second}},
		{name: "a look's error ends it", spec: pollSpec{Timeout: time.Minute, Interval: time.Second}, failAt: 2, wantLooks: 2,
			wantWaits: []time.Duration{time.Second}, wantErr: boom},
		{name: "time runs out after a look at the deadline", spec: pollSpec{Timeout: 3 * time.Second, Interval: time.Second}, wantLooks: 4,
			wantWaits: []time.Duration{time.Second, time.Second, time.Second}, wantErr: &NotDone{After: 3 * time.Second, Reason: "look 4"}},
		{name: "backoff doubles up to its bound", spec: pollSpec{Timeout: 10 * time.Second, Interval: time.Second, MaxInterval: 3 * time.Second}, wantLooks: 6,
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}, wantErr: &NotDone{After: 10 * time.Second, Reason: "look 6"}},
		{name: "pause first", spec: pollSpec{Timeout: time.Minute, Interval: 2 * time.Second, PauseFirst: true}, doneAt: 1, wantLooks: 1,
			wantWaits: []time.Duration{2 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			looks := 0
			err := poll(context.Background(), clock, tc.spec, func(context.Context) (bool, string, error) {
				looks++
				if looks == tc.failAt {
					return false, "", boom
				}
				return looks == tc.doneAt, fmt.Sprintf("look %d", looks), nil
			})
			if looks != tc.wantLooks {
				t.Errorf("looks = %d, want %d", looks, tc.wantLooks)
			}
			if fmt.Sprint(clock.waits) != fmt.Sprint(tc.wantWaits) {
				t.Errorf("waits = %v, want %v", clock.waits, tc.wantWaits)
			}
			var want, got *NotDone
			switch {
			case errors.As(tc.wantErr, &want):
				if !errors.As(err, &got) || *got != *want {
					t.Errorf("err = %v, want %v", err, want)
				}
			case !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestPollBoundsEachLookAndHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var deadlines []bool
	err := poll(ctx, RealClock{}, pollSpec{Timeout: time.Hour, Interval: time.Millisecond, Look: time.Minute}, func(lctx context.Context) (bool, string, error) {
		_, has := lctx.Deadline()
		deadlines = append(deadlines, has)
		if len(deadlines) == 2 {
			cancel()
		}
		return false, "", nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(deadlines) != 2 || !deadlines[0] || !deadlines[1] {
		t.Fatalf("each look should have its own deadline: %v", deadlines)
	}
}

func TestExpiredPutsOnlyNotDoneInTheCallersWords(t *testing.T) {
	words := func(nd *NotDone) error { return fmt.Errorf("%w: x after %s: %s", ErrServiceState, nd.After, nd.Reason) }
	err := expired(fmt.Errorf("wrapped: %w", &NotDone{After: time.Second, Reason: "inactive"}), words)
	if !errors.Is(err, ErrServiceState) || err.Error() != "service did not reach its state: x after 1s: inactive" {
		t.Fatalf("got %v", err)
	}
	if err := expired(context.Canceled, words); err != context.Canceled {
		t.Fatalf("a context error must pass as it is: %v", err)
	}
	if err := expired(nil, words); err != nil {
		t.Fatalf("nil must stay nil: %v", err)
	}
}
