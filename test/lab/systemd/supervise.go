package systemd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubeplay/kubeplay/test/lab/proc"
)

// RunDir holds the state of supervised units.
var RunDir = "/run/lab/systemd"

// States, as systemctl is-active prints them.
const (
	Active     = "active"
	Inactive   = "inactive"
	Activating = "activating"
	Failed     = "failed"
)

func statePath(unit string) string { return filepath.Join(RunDir, unit+".state") }
func childPID(unit string) string  { return filepath.Join(RunDir, unit+".pid") }
func superPID(unit string) string  { return filepath.Join(RunDir, unit+".supervisor") }

func setState(unit, s string) { _ = os.WriteFile(statePath(unit), []byte(s+"\n"), 0o644) }

// State reports a unit's state.
func State(unit string) string {
	if !proc.Alive(readPID(superPID(unit))) {
		b, err := os.ReadFile(statePath(unit))
		if err == nil && strings.TrimSpace(string(b)) == Failed {
			return Failed
		}
		return Inactive
	}
	b, err := os.ReadFile(statePath(unit))
	if err != nil {
		return Activating
	}
	return strings.TrimSpace(string(b))
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// Start launches a detached supervisor for the unit (self is the path of
// this program, re-executed as "__supervise UNIT").
func Start(self, unit string) error {
	if State(unit) == Active || State(unit) == Activating {
		return nil
	}
	u, err := Load(unit)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll("/var/log/lab", 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join("/var/log/lab", u.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	setState(u.Name, Activating)
	cmd := exec.Command(self, "__supervise", u.Name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(superPID(u.Name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	_ = cmd.Process.Release()
	// like systemd for Type=simple: the job succeeds once the process is
	// spawned; give it a moment so an immediate crash shows in is-active
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && State(u.Name) == Activating {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Stop ends the supervisor and its service, waiting for both.
func Stop(unit string) error {
	if !strings.Contains(unit, ".") {
		unit += ".service"
	}
	pid := readPID(superPID(unit))
	if proc.Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(30 * time.Second)
		for proc.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if proc.Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.Remove(superPID(unit))
	setState(unit, Inactive)
	return nil
}

// Restart restarts a running unit in place: the supervisor asks the service
// to exit with SIGUSR2 (the lab kubelet then leaves its static pods
// running, as a real kubelet restart does) and starts it again at once.
func Restart(self, unit string) error {
	if !strings.Contains(unit, ".") {
		unit += ".service"
	}
	sup := readPID(superPID(unit))
	if !proc.Alive(sup) {
		return Start(self, unit)
	}
	if _, err := Load(unit); err != nil {
		return err
	}
	old := readPID(childPID(unit))
	if err := syscall.Kill(sup, syscall.SIGUSR2); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p := readPID(childPID(unit)); p != old && p != 0 && State(unit) != Activating {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not restart within 30s", unit)
}

// Supervise runs a unit's ExecStart, restarting it per Restart= and
// RestartSec=, until SIGTERM, which it forwards to the service. SIGUSR2
// restarts the service at once.
func Supervise(unit string) error {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	for {
		u, err := Load(unit)
		if err != nil {
			setState(unit, Failed)
			return err
		}
		argv, env, err := u.Command()
		if err != nil {
			setState(unit, Failed)
			return err
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: start: %v\n", unit, err)
			setState(unit, Failed)
			if u.Restart == "no" {
				return err
			}
		} else {
			_ = os.WriteFile(childPID(unit), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
			setState(unit, Active)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-usr2:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGUSR2)
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
				continue // start again at once
			case <-term:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
				setState(unit, Inactive)
				return nil
			case err := <-done:
				fmt.Fprintf(os.Stderr, "%s: exited: %v\n", unit, err)
				var ee *exec.ExitError
				clean := err == nil || (errors.As(err, &ee) && ee.ExitCode() == 0)
				if u.Restart == "no" || (u.Restart == "on-failure" && clean) {
					if clean {
						setState(unit, Inactive)
					} else {
						setState(unit, Failed)
					}
					return nil
				}
			}
		}
		setState(unit, Activating) // auto-restart
		select {
		case <-term:
			setState(unit, Inactive)
			return nil
		case <-time.After(u.RestartSec):
		}
	}
}
