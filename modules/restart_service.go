package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RestartService starts, stops, restarts or reloads a systemd unit and waits
// (bounded, polling) until the unit reaches the state asked for.
type RestartService struct{}

// RestartServiceParams are restart-service's parameters.
type RestartServiceParams struct {
	Name         string        `yaml:"name" required:"true" doc:"unit name, e.g. kubelet"`
	State        string        `yaml:"state" default:"restarted" doc:"started, stopped, restarted or reloaded"`
	DaemonReload bool          `yaml:"daemon_reload" doc:"run systemctl daemon-reload first (after unit or drop-in changes)"`
	Enabled      *bool         `yaml:"enabled" doc:"also enable or disable the unit"`
	Timeout      time.Duration `yaml:"timeout" default:"2m" doc:"how long to wait for the unit to become active (or inactive)"`
	Interval     time.Duration `yaml:"interval" default:"1s" doc:"how often to poll systemctl is-active"`
}

// Validate checks the parameters.
func (p *RestartServiceParams) Validate() error {
	if err := required("name", p.Name); err != nil {
		return err
	}
	if strings.ContainsAny(p.Name, " /;|&$`'\"") {
		return fmt.Errorf("name %q is not a unit name", p.Name)
	}
	switch p.State {
	case "started", "stopped", "restarted", "reloaded":
	default:
		return fmt.Errorf("state %q: want started, stopped, restarted or reloaded", p.State)
	}
	return positive(p.Timeout, p.Interval)
}

// ErrServiceState is returned when a unit does not reach the state asked for in time.
var ErrServiceState = errors.New("service did not reach its state")

func (RestartService) Name() string { return "restart-service" }
func (RestartService) Doc() string {
	return "Start, stop, restart or reload a systemd unit (optionally after daemon-reload, and enable/disable it), then poll systemctl is-active until the unit is active on two polls in a row (or inactive), bounded by timeout."
}
func (RestartService) NewParams() Params { return &RestartServiceParams{} }

func activeState(ctx context.Context, c Conn, unit string) (string, error) {
	r, err := c.Exec(ctx, Cmd{Argv: []string{"systemctl", "is-active", unit}})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(r.Stdout), nil
}

func enabledState(ctx context.Context, c Conn, unit string) (bool, error) {
	r, err := c.Exec(ctx, Cmd{Argv: []string{"systemctl", "is-enabled", unit}})
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(r.Stdout) == "enabled", nil
}

// plan says what would be done: the systemctl verb (or "") and the enable change.
func (p *RestartServiceParams) plan(active string, enabled bool) (verb string, enable string) {
	switch p.State {
	case "restarted":
		verb = "restart"
	case "reloaded":
		verb = "reload"
	case "started":
		if active != "active" {
			verb = "start"
		}
	case "stopped":
		if active == "active" || active == "activating" {
			verb = "stop"
		}
	}
	if p.Enabled != nil && *p.Enabled != enabled {
		enable = map[bool]string{true: "enable", false: "disable"}[*p.Enabled]
	}
	return verb, enable
}

// current reads the unit's state and plans the systemctl calls.
func (p *RestartServiceParams) current(ctx context.Context, c Conn) (active, verb, enable string, err error) {
	if active, err = activeState(ctx, c, p.Name); err != nil {
		return "", "", "", err
	}
	enabled, err := enabledState(ctx, c, p.Name)
	if err != nil {
		return "", "", "", err
	}
	verb, enable = p.plan(active, enabled)
	return active, verb, enable, nil
}

// Check predicts the change.
func (RestartService) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*RestartServiceParams)
	active, verb, enable, err := rp.current(ctx, t.Conn)
	if err != nil {
		return Result{}, err
	}
	if verb == "" && enable == "" {
		return Result{Msg: fmt.Sprintf("%s is %s", rp.Name, active)}, nil
	}
	return Result{Changed: true, Msg: fmt.Sprintf("would %s %s (now %s)", strings.TrimSpace(verb+" "+enable), rp.Name, active)}, nil
}

// Run acts, then waits for the unit's state.
func (RestartService) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*RestartServiceParams)
	if rp.DaemonReload {
		if _, err := runScript(ctx, t.Conn, `systemctl daemon-reload`); err != nil {
			return Result{}, fmt.Errorf("daemon-reload: %w", err)
		}
	}
	active, verb, enable, err := rp.current(ctx, t.Conn)
	if err != nil {
		return Result{}, err
	}
	if enable != "" {
		if _, err := runScript(ctx, t.Conn, `systemctl "$1" "$2"`, enable, rp.Name); err != nil {
			return Result{}, fmt.Errorf("systemctl %s %s: %w", enable, rp.Name, err)
		}
	}
	if verb != "" {
		if _, err := runScript(ctx, t.Conn, `systemctl "$1" "$2"`, verb, rp.Name); err != nil {
			return Result{}, fmt.Errorf("systemctl %s %s: %w", verb, rp.Name, err)
		}
	}
	want := "active"
	if rp.State == "stopped" {
		want = "inactive"
	}
	// a unit that crashes right after starting is "active" for an instant:
	// active must be seen on two polls in a row, an interval apart
	need := 1
	if want == "active" {
		need = 2
	}
	seen := 0
	err = poll(ctx, t.Clock, pollSpec{Timeout: rp.Timeout, Interval: rp.Interval}, func(ctx context.Context) (bool, string, error) {
		now, err := activeState(ctx, t.Conn, rp.Name)
		if now == want || (want == "inactive" && now == "failed") {
			seen++
		} else {
			seen = 0
		}
		return err == nil && seen >= need, now, err
	})
	if err != nil {
		return Result{}, expired(err, func(nd *NotDone) error {
			return fmt.Errorf("%w: %s is %s after %s, want %s", ErrServiceState, rp.Name, nd.Reason, nd.After, want)
		})
	}
	changed := verb != "" || enable != "" // a daemon-reload alone changes no state
	msg := fmt.Sprintf("%s is %s", rp.Name, want)
	if verb != "" {
		msg = fmt.Sprintf("%s: %s, now %s", rp.Name, verb, want)
	}
	return Result{Changed: changed, Msg: msg, Data: map[string]any{"before": active, "after": want}}, nil
}
