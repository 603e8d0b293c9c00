// Package systemd is the lab's stand-in for systemd on nodes that have none:
// it reads real unit files with their drop-ins and supervises services with
// systemd's restart semantics, so that systemctl start/stop/restart/
// is-active/daemon-reload/enable behave observably as on a real node.
package systemd

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Dirs are searched in order, as systemd does (first match wins for the
// unit; drop-ins are merged from all).
var Dirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// Unit is the part of a service unit the lab honours.
type Unit struct {
	Name        string
	ExecStart   []string // the last non-empty ExecStart after drop-ins
	Environment map[string]string
	EnvFiles    []string // "-" prefix: optional
	Restart     string   // no, always, on-failure
	RestartSec  time.Duration
}

// Load reads NAME.service and its drop-ins.
func Load(name string) (*Unit, error) {
	if !strings.Contains(name, ".") {
		name += ".service"
	}
	u := &Unit{Name: name, Environment: map[string]string{}, Restart: "no", RestartSec: 100 * time.Millisecond}
	var main string
	for _, d := range Dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			main = p
			break
		}
	}
	if main == "" {
		return nil, fmt.Errorf("Unit %s not found.", name)
	}
	files := []string{main}
	var drops []string
	seen := map[string]bool{}
	for _, d := range Dirs {
		matches, _ := filepath.Glob(filepath.Join(d, name+".d", "*.conf"))
		for _, m := range matches {
			if !seen[filepath.Base(m)] {
				seen[filepath.Base(m)] = true
				drops = append(drops, m)
			}
		}
	}
	sort.Slice(drops, func(i, j int) bool { return filepath.Base(drops[i]) < filepath.Base(drops[j]) })
	files = append(files, drops...)
	for _, f := range files {
		if err := u.parse(f); err != nil {
			return nil, err
		}
	}
	if len(u.ExecStart) == 0 {
		return nil, fmt.Errorf("%s has no ExecStart", name)
	}
	return u, nil
}

func (u *Unit) parse(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	section := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		if section != "Service" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "ExecStart":
			if v == "" {
				u.ExecStart = nil // reset, as drop-ins do
			} else {
				u.ExecStart = splitWords(v)
			}
		case "Environment":
			for _, w := range splitWords(v) {
				if ek, ev, ok := strings.Cut(w, "="); ok {
					u.Environment[ek] = ev
				}
			}
		case "EnvironmentFile":
			u.EnvFiles = append(u.EnvFiles, v)
		case "Restart":
			u.Restart = v
		case "RestartSec":
			if d, err := time.ParseDuration(v); err == nil {
				u.RestartSec = d
			} else if n, err := strconv.Atoi(v); err == nil {
				u.RestartSec = time.Duration(n) * time.Second
			}
		}
	}
	return sc.Err()
}

// splitWords splits like systemd: whitespace-separated, double or single
// quotes group.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	var q rune
	in := false
	for _, r := range s {
		switch {
		case q != 0:
			if r == q {
				q = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			q, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// Command resolves the environment and expands ExecStart: $VAR expands to
// the variable's words (dropped if empty), ${VAR} to one word.
func (u *Unit) Command() ([]string, []string, error) {
	env := map[string]string{}
	for k, v := range u.Environment {
		env[k] = v
	}
	for _, ef := range u.EnvFiles {
		optional := strings.HasPrefix(ef, "-")
		ef = strings.TrimPrefix(ef, "-")
		data, err := os.ReadFile(ef)
		if err != nil {
			if optional {
				continue
			}
			return nil, nil, fmt.Errorf("environment file %s: %w", ef, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok {
				env[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
			}
		}
	}
	var argv []string
	for i, w := range u.ExecStart {
		if i == 0 {
			w = strings.TrimLeft(w, "-@+!:")
		}
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			argv = append(argv, strings.Fields(env[w[1:]])...)
			continue
		}
		argv = append(argv, os.Expand(w, func(k string) string { return env[k] }))
	}
	envList := os.Environ()
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	return argv, envList, nil
}
