package modules

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// AptPin installs exact package versions and holds them (seed 1.4/1.5:
// "apt-mark unhold kubeadm && apt-get install kubeadm=1.37.2-* && apt-mark hold kubeadm").
type AptPin struct{}

// AptPinParams are apt-pin's parameters.
type AptPinParams struct {
	Packages map[string]string `yaml:"packages" required:"true" doc:"package → version or glob (\"1.37.2-*\"); the newest matching version in the repositories is installed"`
	Hold     *bool             `yaml:"hold" default:"true" doc:"hold the packages afterwards (apt-mark hold)"`
	Update   *bool             `yaml:"update" default:"true" doc:"refresh the package index first"`
}

// Validate checks the parameters.
func (p *AptPinParams) Validate() error {
	if len(p.Packages) == 0 {
		return errors.New("packages: at least one package is required")
	}
	for name, v := range p.Packages {
		if name == "" || strings.ContainsAny(name, " =*/") {
			return fmt.Errorf("packages: %q is not a package name", name)
		}
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " ;|&$`'\"") {
			return fmt.Errorf("packages: %s: %q is not a version pattern", name, v)
		}
	}
	return nil
}

// ErrNoSuchVersion is returned when no repository offers a matching version.
var ErrNoSuchVersion = errors.New("no matching package version")

func (AptPin) Name() string { return "apt-pin" }
func (AptPin) Doc() string {
	return "Install exact versions of apt packages and hold them: unhold, update, install the newest version matching each pattern, hold, and verify what dpkg reports. Unchanged when everything is already installed and held at the target."
}
func (AptPin) NewParams() Params { return &AptPinParams{} }

type pkgState struct {
	installed string
	held      bool
	target    string
}

// state reads what is installed and held, and resolves each pattern
// against the repositories (apt-cache madison).
func (AptPin) state(ctx context.Context, t *Target, p *AptPinParams) (map[string]*pkgState, []string, error) {
	names := make([]string, 0, len(p.Packages))
	for n := range p.Packages {
		names = append(names, n)
	}
	sort.Strings(names)
	if _, err := run(ctx, t.Conn, `command -v apt-get >/dev/null`); err != nil {
		return nil, nil, fmt.Errorf("apt-pin needs apt (this host has no apt-get): %w", err)
	}
	held, err := run(ctx, t.Conn, `apt-mark showhold`)
	if err != nil {
		return nil, nil, err
	}
	heldSet := map[string]bool{}
	for _, h := range strings.Fields(held.Stdout) {
		heldSet[h] = true
	}
	out := map[string]*pkgState{}
	for _, n := range names {
		st := &pkgState{held: heldSet[n]}
		r, err := t.Conn.Exec(ctx, Cmd{Argv: []string{"dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", n}})
		if err != nil {
			return nil, nil, err
		}
		// db:Status-Abbrev is want+status ("ii", or "hi" when held): the
		// second letter says whether it is installed
		if f := strings.Fields(r.Stdout); r.RC == 0 && len(f) == 2 && len(f[0]) >= 2 && f[0][1] == 'i' {
			st.installed = f[1]
		}
		m, err := run(ctx, t.Conn, `apt-cache madison "$1"`, n)
		if err != nil {
			return nil, nil, err
		}
		var offered []string
		for _, line := range strings.Split(m.Stdout, "\n") {
			f := strings.Split(line, "|")
			if len(f) >= 2 {
				offered = append(offered, strings.TrimSpace(f[1]))
			}
		}
		want := p.Packages[n]
		for _, v := range offered { // madison lists newest first
			if ok, _ := path.Match(want, v); ok {
				st.target = v
				break
			}
		}
		if st.target == "" {
			return nil, nil, fmt.Errorf("%w: %s=%s (the repositories offer: %s)", ErrNoSuchVersion, n, want, strings.Join(offered, ", "))
		}
		out[n] = st
	}
	return out, names, nil
}

func (p *AptPinParams) hold() bool   { return p.Hold == nil || *p.Hold }
func (p *AptPinParams) update() bool { return p.Update == nil || *p.Update }

func describe(names []string, st map[string]*pkgState) (string, map[string]any, bool) {
	var msgs []string
	data := map[string]any{}
	changed := false
	for _, n := range names {
		s := st[n]
		data[n] = map[string]any{"from": s.installed, "to": s.target}
		if s.installed != s.target {
			from := s.installed
			if from == "" {
				from = "(not installed)"
			}
			msgs = append(msgs, fmt.Sprintf("%s %s → %s", n, from, s.target))
			changed = true
		}
	}
	if !changed {
		return "all at target", data, false
	}
	return strings.Join(msgs, ", "), data, true
}

// Check reports what would be installed.
func (a AptPin) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	ap := p.(*AptPinParams)
	st, names, err := a.state(ctx, t, ap)
	if errors.Is(err, ErrNoSuchVersion) {
		// in a dry run an earlier step (swap-repo) has not changed the
		// repositories: the install is predicted, not proven
		return Result{Changed: true, Msg: "would install, but cannot verify now: " + err.Error()}, nil
	}
	if err != nil {
		return Result{}, err
	}
	msg, data, changed := describe(names, st)
	for _, n := range names {
		if ap.hold() && !st[n].held {
			changed = true
			msg += "; would hold " + n
		}
	}
	if changed {
		msg = "would install: " + msg
	}
	return Result{Changed: changed, Msg: msg, Data: data}, nil
}

// Run installs and holds.
func (a AptPin) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	ap := p.(*AptPinParams)
	if ap.update() {
		if _, err := run(ctx, t.Conn, `DEBIAN_FRONTEND=noninteractive apt-get update -q`); err != nil {
			return Result{}, fmt.Errorf("apt-get update: %w", err)
		}
	}
	st, names, err := a.state(ctx, t, ap)
	if err != nil {
		return Result{}, err
	}
	msg, data, needInstall := describe(names, st)
	needHold := false
	for _, n := range names {
		needHold = needHold || (ap.hold() && !st[n].held)
	}
	if !needInstall && !needHold {
		return Result{Msg: msg, Data: data}, nil
	}
	if needInstall {
		args := []string{}
		for _, n := range names {
			args = append(args, n+"="+st[n].target)
		}
		// held packages are unheld only for this install, then held again
		script := `set -e
pkgs=""; for a in "$@"; do pkgs="$pkgs ${a%%=*}"; done
apt-mark unhold $pkgs >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confold "$@"`
		if _, err := run(ctx, t.Conn, script, args...); err != nil {
			return Result{Data: data}, fmt.Errorf("apt-get install %s: %w", strings.Join(args, " "), err)
		}
	}
	if ap.hold() {
		if _, err := run(ctx, t.Conn, `apt-mark hold "$@" >/dev/null`, names...); err != nil {
			return Result{Data: data}, fmt.Errorf("apt-mark hold: %w", err)
		}
	}
	// verify what dpkg now reports, instead of trusting the exit codes
	after, _, err := a.state(ctx, t, ap)
	if err != nil {
		return Result{Data: data}, err
	}
	for _, n := range names {
		if after[n].installed != st[n].target {
			return Result{Data: data}, fmt.Errorf("%s: installed %q after the install, want %q", n, after[n].installed, st[n].target)
		}
		if ap.hold() && !after[n].held {
			return Result{Data: data}, fmt.Errorf("%s is not held after apt-mark hold", n)
		}
	}
	if !needInstall {
		msg = "held " + strings.Join(names, ", ")
	}
	return Result{Changed: true, Msg: msg, Data: data}, nil
}
