package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Reboot reboots the host and waits until it is back: the SSH connection
// drops, comes back, and the kernel reports another boot id.
type Reboot struct{}

// RebootParams are reboot's parameters.
type RebootParams struct {
	Command  string        `yaml:"command" default:"reboot" doc:"what reboots the host"`
	Timeout  time.Duration `yaml:"timeout" default:"10m" doc:"bound on going down and coming back"`
	Interval time.Duration `yaml:"interval" default:"3s" doc:"how often to try the host meanwhile"`
}

// Validate checks the parameters.
func (p *RebootParams) Validate() error {
	if err := required("command", p.Command); err != nil {
		return err
	}
	return positive(p.Timeout, p.Interval)
}

// ErrNoReboot is returned when the host does not come back with a new boot
// within the timeout.
var ErrNoReboot = errors.New("host did not reboot")

const bootIDPath = "/proc/sys/kernel/random/boot_id"

func (Reboot) Name() string { return "reboot" }
func (Reboot) Doc() string {
	return "Reboot the host and wait until it is back: the command runs detached (so the SSH session can drop), then the host is tried every interval until it answers with another boot id (/proc/sys/kernel/random/boot_id) than before; an answer with the old one means it has not gone down yet. Bounded by timeout. Register exposes boot_id_before, boot_id and seconds. Drain first: the step does not."
}
func (Reboot) NewParams() Params { return &RebootParams{} }

// Check says the host would reboot.
func (Reboot) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return Result{Changed: true, Msg: "would reboot " + t.Host.Name}, nil
}

// Run reboots and waits.
func (Reboot) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*RebootParams)
	before, err := bootID(ctx, t.Conn)
	if err != nil {
		return Result{}, fmt.Errorf("read the boot id: %w", err)
	}
	start := t.Clock.Now()
	// detached: the command outlives the session it came from
	if _, err := runScript(ctx, t.Conn, `nohup /bin/sh -c 'sleep 1; eval "$1"' kubeplay "$1" >/dev/null 2>&1 </dev/null &`, rp.Command); err != nil {
		return Result{}, fmt.Errorf("start %q: %w", rp.Command, err)
	}
	t.Log.Info("rebooting", zap.String("command", rp.Command), zap.String("boot_id", before))
	wentDown := false
	var id string
	err = poll(ctx, t.Clock, pollSpec{Timeout: rp.Timeout, Interval: rp.Interval, Look: 15 * time.Second, PauseFirst: true}, func(ctx context.Context) (bool, string, error) {
		var err error
		if id, err = bootID(ctx, t.Conn); err != nil {
			if !wentDown {
				t.Log.Info("host down", zap.Error(err))
			}
			wentDown = true
			return false, "went down and did not come back with a new boot", nil
		}
		if wentDown {
			return id != before, "went down and did not come back with a new boot", nil
		}
		return id != before, "never went down", nil
	})
	if err != nil {
		return Result{Changed: wentDown || ctx.Err() != nil}, expired(err, func(nd *NotDone) error {
			return fmt.Errorf("%w within %s: %s %s", ErrNoReboot, nd.After, t.Host.Name, nd.Reason)
		})
	}
	secs := t.Clock.Now().Sub(start).Seconds()
	return Result{Changed: true, Msg: fmt.Sprintf("rebooted in %.0fs", secs),
		Data: map[string]any{"boot_id_before": before, "boot_id": id, "seconds": secs}}, nil
}

func bootID(ctx context.Context, c Conn) (string, error) {
	r, err := runScript(ctx, c, `cat "$1"`, bootIDPath)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(r.Stdout)
	if id == "" {
		return "", errors.New("empty boot id")
	}
	return id, nil
}
