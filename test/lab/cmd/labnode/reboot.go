package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubeplay/kubeplay/test/lab/systemd"
)

// BootIDFile holds the node's boot id; node-init.sh bind-mounts it over
// /proc/sys/kernel/random/boot_id, so that a lab reboot changes what the
// node reports as the kernel's.
const BootIDFile = "/run/lab/boot_id"

// reboot detaches a shutdown-and-boot of the node and returns at once, as
// `reboot` does: the caller's SSH session is about to drop.
func reboot() int {
	self, _ := os.Executable()
	logf, err := os.OpenFile("/var/log/lab/reboot.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logf.Close()
	cmd := exec.Command(self, "__reboot")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = cmd.Process.Release()
	return 0
}

// doReboot is what a reboot does to a lab node, which shares the machine's
// kernel: every running unit stops (the kubelet's static pods with it),
// every SSH session drops (the listener, which holds the node's
// namespaces, stays), the boot id changes, and the enabled units start, as
// at boot.
func doReboot() int {
	time.Sleep(300 * time.Millisecond)
	fmt.Println(time.Now().Format(time.RFC3339), "reboot: stopping units")
	states, _ := filepath.Glob(filepath.Join(systemd.RunDir, "*.state"))
	for _, s := range states {
		u := strings.TrimSuffix(filepath.Base(s), ".state")
		if st := systemd.State(u); st == systemd.Active || st == systemd.Activating {
			_ = systemd.Stop(u)
		}
	}
	fmt.Println(time.Now().Format(time.RFC3339), "reboot: dropping SSH sessions")
	listener, _ := strconv.Atoi(strings.TrimSpace(readFile("/run/sshd.pid")))
	for _, pid := range children(listener) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if err := os.WriteFile(BootIDFile, []byte(id+"\n"), 0o444); err != nil {
		fmt.Println("reboot: boot id:", err)
	}
	fmt.Println(time.Now().Format(time.RFC3339), "reboot: booted", id)
	self, _ := os.Executable()
	wants, _ := filepath.Glob("/etc/systemd/system/multi-user.target.wants/*.service")
	for _, w := range wants {
		if err := systemd.Start(self, filepath.Base(w)); err != nil {
			fmt.Println("reboot: start", filepath.Base(w)+":", err)
		}
	}
	return 0
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	if pid <= 1 {
		return nil
	}
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat := readFile(filepath.Join("/proc", d.Name(), "stat"))
		// pid (comm) state ppid ...: comm may hold spaces, so parse after ")"
		if i := strings.LastIndexByte(stat, ')'); i > 0 {
			if f := strings.Fields(stat[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				out = append(out, p)
			}
		}
	}
	return out
}
