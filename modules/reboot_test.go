package modules

import (
	"context"
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// bootConn answers boot id reads from a script: "" is a dropped
// connection; the reboot command itself succeeds.
type bootConn struct {
	mu      sync.Mutex
	answers []string
	cmds    []string
}

func (c *bootConn) Exec(_ context.Context, cmd Cmd) (ExecResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds = append(c.cmds, cmd.String())
	if strings.Contains(cmd.String(), "nohup") {
		return ExecResult{}, nil
	}
	if len(c.answers) == 0 {
		return ExecResult{}, errors.New("connection refused")
	}
	a := c.answers[0]
	if len(c.answers) > 1 {
		c.answers = c.answers[1:]
	}
	if a == "" {
		return ExecResult{}, errors.New("connection reset")
	}
	return ExecResult{Stdout: a + "\n"}, nil
}

func rebootTarget(c Conn) *Target {
	return &Target{Host: HostInfo{Name: "n1"}, Conn: c, Log: zap.NewNop(), Clock: RealClock{}}
}

// The host is back once it answers with another boot id; answers with the
// old one (not down yet) and dropped connections are waited through.
func TestRebootWaitsForANewBoot(t *testing.T) {
	c := &bootConn{answers: []string{"boot-a", "boot-a", "", "", "boot-b"}}
	p := &RebootParams{Interval: time.Millisecond}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := Reboot{}.Run(context.Background(), rebootTarget(c), p)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || r.Data["boot_id_before"] != "boot-a" || r.Data["boot_id"] != "boot-b" {
		t.Fatalf("result: %+v", r)
	}
	if !strings.Contains(strings.Join(c.cmds, "\n"), "reboot") {
		t.Fatalf("the reboot command never ran: %v", c.cmds)
	}
}

// A host that never goes down (the command did nothing) fails the step at
// the timeout, saying so.
func TestRebootTimesOut(t *testing.T) {
	c := &bootConn{answers: []string{"boot-a"}}
	p := &RebootParams{Interval: time.Millisecond, Timeout: 50 * time.Millisecond}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := Reboot{}.Run(context.Background(), rebootTarget(c), p)
	if !errors.Is(err, ErrNoReboot) || !strings.Contains(err.Error(), "never went down") {
		t.Fatalf("want ErrNoReboot naming that it never went down: %v", err)
	}
}
