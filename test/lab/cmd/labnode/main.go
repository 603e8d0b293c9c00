// Command labnode is installed inside lab nodes under several names:
//   - systemctl: start/stop/restart/reload/status/is-active/is-enabled/
//     enable/disable (--now too)/daemon-reload for the node's units
//     (package systemd);
//   - containerd (and cri-dockerd, dockerd): a container runtime stand-in
//     that serves its socket and reports its version to the kubelet;
//   - reboot: the node's units stop, its SSH sessions drop, its boot id
//     changes and its enabled units start again (the kernel is shared).
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"

	"github.com/kubeplay/kubeplay/internal/tomledit"
	"github.com/kubeplay/kubeplay/test/lab/systemd"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "labnode" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	var code int
	switch name {
	case "systemctl":
		code = systemctl(args)
	case "__supervise": // systemctl re-executing itself to supervise a unit
		code = systemctl(append([]string{name}, args...))
	case "reboot":
		code = reboot()
	case "__reboot":
		code = doReboot()
	case "containerd", "cri-dockerd", "dockerd":
		if name == "containerd" && len(args) == 2 && args[0] == "config" && args[1] == "default" {
			fmt.Print(containerdDefaultConfig)
			return
		}
		code = runtime(name, args)
	default:
		fmt.Fprintf(os.Stderr, "labnode: unknown personality %q\n", name)
		code = 2
	}
	os.Exit(code)
}

func systemctl(args []string) int {
	var words []string
	now := false
	for _, a := range args {
		if a == "--now" {
			now = true
		}
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		fmt.Fprintln(os.Stderr, "systemctl: lab nodes support start, stop, restart, try-restart, reload, status, is-active, is-enabled, enable, disable, daemon-reload")
		return 1
	}
	verb, units := words[0], words[1:]
	self, _ := os.Executable()
	code := 0
	for i := range units {
		if !strings.Contains(units[i], ".") {
			units[i] += ".service"
		}
	}
	switch verb {
	case "daemon-reload", "reset-failed":
		return 0 // units are read at every start
	case "__supervise":
		if err := systemd.Supervise(units[0]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	for _, u := range units {
		var err error
		switch verb {
		case "start":
			err = systemd.Start(self, u)
		case "stop":
			err = systemd.Stop(u)
		case "restart", "reload", "try-restart", "reload-or-restart":
			if verb == "try-restart" && systemd.State(u) != systemd.Active {
				continue
			}
			err = systemd.Restart(self, u)
		case "is-active":
			s := systemd.State(u)
			fmt.Println(s)
			if s != systemd.Active {
				code = 3
			}
		case "is-enabled":
			if _, serr := os.Stat(wantsLink(u)); serr == nil {
				fmt.Println("enabled")
			} else {
				fmt.Println("disabled")
				code = 1
			}
		case "enable":
			if _, err = systemd.Load(u); err == nil {
				_ = os.MkdirAll(filepath.Dir(wantsLink(u)), 0o755)
				_ = os.Remove(wantsLink(u))
				err = os.Symlink("/lib/systemd/system/"+u, wantsLink(u))
			}
			if err == nil && now {
				err = systemd.Start(self, u)
			}
		case "disable":
			_ = os.Remove(wantsLink(u))
			if now {
				err = systemd.Stop(u)
			}
		case "status":
			s := systemd.State(u)
			fmt.Printf("● %s\n     Active: %s\n", u, s)
			if s != systemd.Active {
				code = 3
			}
		default:
			fmt.Fprintf(os.Stderr, "systemctl: %q is not supported on lab nodes\n", verb)
			return 1
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Failed to %s %s: %v\n", verb, u, err)
			code = 1
		}
	}
	return code
}

func wantsLink(unit string) string {
	return filepath.Join("/etc/systemd/system/multi-user.target.wants", unit)
}

// containerdDefaultConfig is the part of `containerd config default` (1.7)
// the docs' procedures touch: runc's options, SystemdCgroup off.
const containerdDefaultConfig = `disabled_plugins = []
imports = []
oom_score = 0
root = "/var/lib/containerd"
state = "/run/containerd"
version = 2

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.8"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            SystemdCgroup = false
`

// RuntimeCgroupDriverFile is where the running runtime publishes its cgroup
// driver, for the kubelet stand-in to compare with its own.
const RuntimeCgroupDriverFile = "/run/lab/runtime-cgroup-driver"

var dockerSystemd = regexp.MustCompile(`native\.cgroupdriver=systemd`)

// runcOptions are the tables of runc's options in containerd's config:
// config version 2 (containerd 1.x), version 3 (containerd 2.x).
var runcOptions = map[int64]string{
	2: `plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options`,
	3: `plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options`,
}

// cgroupDriver reads the runtime's configuration as the real one does at
// start: containerd reads its config as TOML (a file it cannot parse
// stops it) and takes SystemdCgroup from runc's own options table only
// (default false: cgroupfs); Docker takes exec-opts native.cgroupdriver
// from daemon.json.
func cgroupDriver(name string) (string, error) {
	if name != "containerd" {
		if b, err := os.ReadFile("/etc/docker/daemon.json"); err == nil && dockerSystemd.Match(b) {
			return "systemd", nil
		}
		return "cgroupfs", nil
	}
	b, err := os.ReadFile("/etc/containerd/config.toml")
	if errors.Is(err, os.ErrNotExist) {
		return "cgroupfs", nil
	} else if err != nil {
		return "", err
	}
	var doc struct {
		Version int64 `toml:"version"`
	}
	if _, err := toml.Decode(string(b), &doc); err != nil {
		return "", fmt.Errorf("failed to load TOML from /etc/containerd/config.toml: %w", err)
	}
	v := doc.Version
	table, ok := runcOptions[v]
	if !ok {
		table = runcOptions[2]
	}
	on, err := tomledit.Get(b, table, "SystemdCgroup")
	if err != nil {
		return "", fmt.Errorf("failed to load TOML from /etc/containerd/config.toml: %w", err)
	}
	if on == true {
		return "systemd", nil
	}
	return "cgroupfs", nil
}

// runtime serves a CRI-looking socket and publishes its version, so that
// stopping the runtime is observable (the socket disappears) and the kubelet
// reports the runtime it runs on.
func runtime(name string, args []string) int {
	sock := map[string]string{
		"containerd":  "/run/containerd/containerd.sock",
		"cri-dockerd": "/run/cri-dockerd.sock",
		"dockerd":     "/run/docker.sock",
	}[name]
	ver := map[string]string{
		"containerd":  "containerd://1.7.24",
		"cri-dockerd": "docker://27.3.1",
		"dockerd":     "docker://27.3.1",
	}[name]
	_ = os.MkdirAll(filepath.Dir(sock), 0o755)
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.Remove(sock)
	_ = os.MkdirAll("/run/lab", 0o755)
	driver, err := cgroupDriver(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	_ = os.WriteFile(RuntimeCgroupDriverFile, []byte(driver+"\n"), 0o644)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// the kubelet's CRI Version call, in one line
			_, _ = fmt.Fprintf(c, "%s %s\n", ver, driver)
			c.Close()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	l.Close()
	return 0
}
