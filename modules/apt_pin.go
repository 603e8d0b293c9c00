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
// "apt-mark unhold kubeadm && apt-get install kubeadm=1.37.2-* && apt-mark hold kubeadm";
// on yum/dnf hosts "yum install -y kubeadm-'1.37.2-*' --disableexcludes=kubernetes").
type AptPin struct{}

// AptPinParams are apt-pin's parameters.
type AptPinParams struct {
	Packages map[string]string `yaml:"packages" required:"true" doc:"package → version or glob (\"1.37.2-*\"); the newest matching version in the repositories is installed"`
	Hold     bool              `yaml:"hold" default:"true" doc:"hold the packages afterwards (apt-mark hold; on yum/dnf hosts the kubernetes repository's exclude= line is the hold, and it must list them)"`
	Update   bool              `yaml:"update" default:"true" doc:"refresh the package index first"`
	Manager  string            `yaml:"manager" doc:"apt, yum or dnf (default: facts.pkg_manager when facts were gathered, else detected)"`
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
	switch p.Manager {
	case "", "apt", "yum", "dnf":
	default:
		return fmt.Errorf("manager %q: want apt, yum or dnf", p.Manager)
	}
	return nil
}

// ErrNoSuchVersion is returned when no repository offers a matching version.
var ErrNoSuchVersion = errors.New("no matching package version")

func (AptPin) Name() string { return "apt-pin" }
func (AptPin) Doc() string {
	return "Install exact versions of the kubeadm packages and hold them: unhold, update, install the newest version matching each pattern, hold, and verify what the package database reports. apt hosts use apt-get and apt-mark; yum/dnf hosts use install --disableexcludes=kubernetes, with the repository's exclude= line as the hold. Unchanged when everything is already installed and held at the target."
}
func (AptPin) NewParams() Params { return &AptPinParams{} }

type pkgState struct {
	installed string
	held      bool
	target    string
}

// pkgTool is one package manager's way of doing apt-pin's steps.
type pkgTool interface {
	name() string
	installed(ctx context.Context, c Conn, pkg string) (string, error)
	offered(ctx context.Context, c Conn, pkg string) ([]string, error) // newest first
	held(ctx context.Context, c Conn) (map[string]bool, error)
	update(ctx context.Context, c Conn) error
	install(ctx context.Context, c Conn, pkgs []string, versions []string) error
	hold(ctx context.Context, c Conn, pkgs []string) error
}

// tool picks the package manager: the param, the host's facts, or what
// the host has.
func (p *AptPinParams) tool(ctx context.Context, t *Target) (pkgTool, error) {
	m := p.Manager
	if m == "" {
		m, _ = t.Facts["pkg_manager"].(string)
	}
	if m == "" {
		r, err := runScript(ctx, t.Conn, `for m in apt-get dnf yum; do if command -v $m >/dev/null 2>&1; then echo ${m%-get}; exit 0; fi; done`)
		if err != nil {
			return nil, err
		}
		m = strings.TrimSpace(r.Stdout)
	}
	switch m {
	case "apt":
		return aptTool{}, nil
	case "yum", "dnf":
		return yumTool{cmd: m}, nil
	case "":
		return nil, errors.New("apt-pin needs apt, yum or dnf (none found on the host)")
	}
	return nil, fmt.Errorf("apt-pin does not support the %s package manager", m)
}

type aptTool struct{}

func (aptTool) name() string { return "apt" }

func (aptTool) installed(ctx context.Context, c Conn, pkg string) (string, error) {
	r, err := c.Exec(ctx, Cmd{Argv: []string{"dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", pkg}})
	if err != nil {
		return "", err
	}
	// db:Status-Abbrev is want+status ("ii", or "hi" when held): the second
	// letter says whether it is installed
	if f := strings.Fields(r.Stdout); r.RC == 0 && len(f) == 2 && len(f[0]) >= 2 && f[0][1] == 'i' {
		return f[1], nil
	}
	return "", nil
}

func (aptTool) offered(ctx context.Context, c Conn, pkg string) ([]string, error) {
	m, err := runScript(ctx, c, `apt-cache madison "$1"`, pkg)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(m.Stdout, "\n") {
		if f := strings.Split(line, "|"); len(f) >= 2 {
			out = append(out, strings.TrimSpace(f[1]))
		}
	}
	return out, nil // madison lists newest first
}

func (aptTool) held(ctx context.Context, c Conn) (map[string]bool, error) {
	r, err := runScript(ctx, c, `apt-mark showhold`)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range strings.Fields(r.Stdout) {
		out[h] = true
	}
	return out, nil
}

func (aptTool) update(ctx context.Context, c Conn) error {
	if _, err := runScript(ctx, c, `DEBIAN_FRONTEND=noninteractive apt-get update -q`); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	return nil
}

func (aptTool) install(ctx context.Context, c Conn, pkgs, versions []string) error {
	args := make([]string, len(pkgs))
	for i := range pkgs {
		args[i] = pkgs[i] + "=" + versions[i]
	}
	// held packages are unheld only for this install, then held again
	script := `set -e
pkgs=""; for a in "$@"; do pkgs="$pkgs ${a%%=*}"; done
apt-mark unhold $pkgs >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confold "$@"`
	if _, err := runScript(ctx, c, script, args...); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (aptTool) hold(ctx context.Context, c Conn, pkgs []string) error {
	if _, err := runScript(ctx, c, `apt-mark hold "$@" >/dev/null`, pkgs...); err != nil {
		return fmt.Errorf("apt-mark hold: %w", err)
	}
	return nil
}

// yumTool is yum or dnf. The docs' repository definition excludes the
// kubeadm packages (exclude=), which is their hold; installs lift it with
// --disableexcludes=kubernetes.
type yumTool struct{ cmd string }

func (y yumTool) name() string { return y.cmd }

func (yumTool) installed(ctx context.Context, c Conn, pkg string) (string, error) {
	r, err := c.Exec(ctx, Cmd{Argv: []string{"rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", pkg}})
	if err != nil {
		return "", err
	}
	if r.RC != 0 {
		return "", nil
	}
	return strings.TrimSpace(r.Stdout), nil
}

func (y yumTool) offered(ctx context.Context, c Conn, pkg string) ([]string, error) {
	r, err := c.Exec(ctx, Cmd{Argv: []string{y.cmd, "list", "--showduplicates", "-q", "--disableexcludes=kubernetes", pkg}})
	if err != nil {
		return nil, err
	}
	if r.RC != 0 && !strings.Contains(r.Stdout, pkg) {
		return nil, nil // "No matching Packages to list"
	}
	var out []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], pkg+".") {
			v := f[1]
			if _, rest, ok := strings.Cut(v, ":"); ok { // epoch
				v = rest
			}
			out = append([]string{v}, out...) // yum lists oldest first
		}
	}
	return out, nil
}

func (yumTool) held(ctx context.Context, c Conn) (map[string]bool, error) {
	r, err := runScript(ctx, c, `cat /etc/yum.repos.d/*.repo 2>/dev/null | sed -n 's/^[[:space:]]*exclude[[:space:]]*=//p'`)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range strings.Fields(strings.ReplaceAll(r.Stdout, ",", " ")) {
		out[h] = true
	}
	return out, nil
}

func (y yumTool) update(ctx context.Context, c Conn) error {
	if _, err := c.Exec(ctx, Cmd{Argv: []string{y.cmd, "makecache", "-q", "--disableexcludes=kubernetes"}}); err != nil {
		return fmt.Errorf("%s makecache: %w", y.cmd, err)
	}
	return nil
}

func (y yumTool) install(ctx context.Context, c Conn, pkgs, versions []string) error {
	argv := []string{y.cmd, "install", "-y", "--disableexcludes=kubernetes"}
	for i := range pkgs {
		argv = append(argv, pkgs[i]+"-"+versions[i])
	}
	r, err := c.Exec(ctx, Cmd{Argv: argv})
	if err != nil {
		return err
	}
	if r.RC != 0 {
		return fmt.Errorf("%s: %w: exit code %d: %s", strings.Join(argv, " "), ErrCommandFailed, r.RC, lastLine(r.Stderr, r.Stdout))
	}
	return nil
}

// hold has nothing to do: state() refused unexcluded packages up front.
func (yumTool) hold(context.Context, Conn, []string) error { return nil }

// state reads what is installed and held, and resolves each pattern
// against the repositories.
func (AptPin) state(ctx context.Context, t *Target, p *AptPinParams, tool pkgTool) (map[string]*pkgState, []string, error) {
	names := make([]string, 0, len(p.Packages))
	for n := range p.Packages {
		names = append(names, n)
	}
	sort.Strings(names)
	heldSet, err := tool.held(ctx, t.Conn)
	if err != nil {
		return nil, nil, err
	}
	out := map[string]*pkgState{}
	for _, n := range names {
		st := &pkgState{held: heldSet[n]}
		if _, isYum := tool.(yumTool); isYum && p.Hold && !st.held {
			return nil, nil, fmt.Errorf("%s is not excluded by any yum repository: on %s hosts the kubernetes repository's exclude= line is the hold (as the docs set it up); add %s to it, or set hold: false", n, tool.name(), n)
		}
		if st.installed, err = tool.installed(ctx, t.Conn, n); err != nil {
			return nil, nil, err
		}
		offered, err := tool.offered(ctx, t.Conn, n)
		if err != nil {
			return nil, nil, err
		}
		want := p.Packages[n]
		for _, v := range offered {
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
	tool, err := ap.tool(ctx, t)
	if err != nil {
		return Result{}, err
	}
	st, names, err := a.state(ctx, t, ap, tool)
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
		if ap.Hold && !st[n].held {
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
	tool, err := ap.tool(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if ap.Update {
		if err := tool.update(ctx, t.Conn); err != nil {
			return Result{}, err
		}
	}
	st, names, err := a.state(ctx, t, ap, tool)
	if err != nil {
		return Result{}, err
	}
	msg, data, needInstall := describe(names, st)
	needHold := false
	for _, n := range names {
		needHold = needHold || (ap.Hold && !st[n].held)
	}
	if !needInstall && !needHold {
		return Result{Msg: msg, Data: data}, nil
	}
	if needInstall {
		versions := make([]string, len(names))
		for i, n := range names {
			versions[i] = st[n].target
		}
		if err := tool.install(ctx, t.Conn, names, versions); err != nil {
			return Result{Data: data}, err
		}
	}
	if ap.Hold {
		if err := tool.hold(ctx, t.Conn, names); err != nil {
			return Result{Data: data}, err
		}
	}
	// verify what the package database now reports, instead of trusting
	// the exit codes
	after, _, err := a.state(ctx, t, ap, tool)
	if err != nil {
		return Result{Data: data}, err
	}
	for _, n := range names {
		if after[n].installed != st[n].target {
			return Result{Data: data}, fmt.Errorf("%s: installed %q after the install, want %q", n, after[n].installed, st[n].target)
		}
		if ap.Hold && !after[n].held {
			return Result{Data: data}, fmt.Errorf("%s is not held after the hold", n)
		}
	}
	if !needInstall {
		msg = "held " + strings.Join(names, ", ")
	}
	return Result{Changed: true, Msg: msg, Data: data}, nil
}
