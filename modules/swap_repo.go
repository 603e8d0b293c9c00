package modules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SwapRepo moves a pkgs.k8s.io package repository definition to another
// minor version (seed 1.7, "Changing the Kubernetes package repository").
type SwapRepo struct{}

// SwapRepoParams are swap-repo's parameters.
type SwapRepoParams struct {
	Minor   string `yaml:"minor" required:"true" doc:"target minor, e.g. \"1.37\""`
	File    string `yaml:"file" doc:"repository file (default: the first of the usual apt, yum and zypper locations that exists)"`
	Force   bool   `yaml:"force" doc:"allow going down or skipping minors"`
	Backup  bool   `yaml:"backup" default:"true" doc:"keep a timestamped copy of the file for rollback"`
	Refresh bool   `yaml:"refresh" default:"true" doc:"refresh the package index afterwards"`
}

var minorRe = regexp.MustCompile(`^1\.\d+$`)

// Validate checks the parameters.
func (p *SwapRepoParams) Validate() error {
	p.Minor = strings.TrimPrefix(p.Minor, "v")
	if !minorRe.MatchString(p.Minor) {
		return fmt.Errorf("minor %q: want MAJOR.MINOR such as 1.37", p.Minor)
	}
	return nil
}

// repoFiles are where the docs put the repository definition.
var repoFiles = []string{
	"/etc/apt/sources.list.d/kubernetes.list",
	"/etc/apt/sources.list.d/kubernetes.sources",
	"/etc/yum.repos.d/kubernetes.repo",
	"/etc/zypp/repos.d/kubernetes.repo",
}

// ErrLegacyRepo is returned for the frozen apt.kubernetes.io / yum.kubernetes.io repositories.
var ErrLegacyRepo = errors.New("legacy Kubernetes package repository")

// ErrMinorSkew is returned for a move that goes down or skips a minor.
var ErrMinorSkew = errors.New("refusing to move the package repository")

func (SwapRepo) Name() string { return "swap-repo" }
func (SwapRepo) Doc() string {
	return "Point a pkgs.k8s.io repository definition (apt .list or deb822 .sources, yum/zypper .repo with baseurl and gpgkey) at another minor, back it up, and refresh the package index. Refuses to go down or skip a minor unless forced; a legacy (non pkgs.k8s.io) repository is an error."
}
func (SwapRepo) NewParams() Params { return &SwapRepoParams{} }

var stableRe = regexp.MustCompile(`pkgs\.k8s\.io/core:/stable:/v(1\.\d+)/`)

// plan reads the repository file and computes the edit.
func (SwapRepo) plan(ctx context.Context, t *Target, p *SwapRepoParams) (file, before, after, from string, err error) {
	files := repoFiles
	if p.File != "" {
		files = []string{p.File}
	}
	for _, f := range files {
		content, ok, err := readFile(ctx, t.Conn, f)
		if err != nil {
			return "", "", "", "", err
		}
		if ok {
			file, before = f, content
			break
		}
	}
	if file == "" {
		return "", "", "", "", fmt.Errorf("no Kubernetes package repository definition found (looked at %s)", strings.Join(files, ", "))
	}
	m := stableRe.FindAllStringSubmatch(before, -1)
	if len(m) == 0 {
		if strings.Contains(before, "apt.kubernetes.io") || strings.Contains(before, "packages.cloud.google.com") || strings.Contains(before, "yum.kubernetes.io") {
			return file, before, "", "", fmt.Errorf("%w in %s: the Google-hosted repositories are frozen; move to pkgs.k8s.io first (seed 1.7)", ErrLegacyRepo, file)
		}
		return file, before, "", "", fmt.Errorf("%w: %s names no pkgs.k8s.io/core:/stable:/vX.Y/ repository", ErrLegacyRepo, file)
	}
	from = m[0][1]
	for _, x := range m[1:] {
		if x[1] != from {
			return file, before, "", "", fmt.Errorf("%s names several minors (%s and %s); fix it by hand", file, from, x[1])
		}
	}
	if err := checkMove(from, p.Minor, p.Force); err != nil {
		return file, before, "", from, err
	}
	after = stableRe.ReplaceAllString(before, "pkgs.k8s.io/core:/stable:/v"+p.Minor+"/")
	return file, before, after, from, nil
}

func checkMove(from, to string, force bool) error {
	minorOf := func(v string) int { n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[1]); return n }
	a, b := minorOf(from), minorOf(to)
	switch {
	case force || b == a || b == a+1:
		return nil
	case b < a:
		return fmt.Errorf("%w from v%s down to v%s (use force: true to go back deliberately)", ErrMinorSkew, from, to)
	default:
		return fmt.Errorf("%w from v%s to v%s: upgrades move one minor at a time (v%s first)", ErrMinorSkew, from, to, fmt.Sprintf("1.%d", a+1))
	}
}

// Check reports the change without making it.
func (s SwapRepo) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	sp := p.(*SwapRepoParams)
	file, before, after, from, err := s.plan(ctx, t, sp)
	if err != nil {
		return Result{}, err
	}
	data := asData(swapRepoState{File: file, From: from, To: sp.Minor})
	if before == after {
		return Result{Msg: fmt.Sprintf("%s already on v%s", file, sp.Minor), Data: data}, nil
	}
	return Result{Changed: true, Msg: fmt.Sprintf("would move %s from v%s to v%s", file, from, sp.Minor),
		Diff: unifiedDiff(file, before, after), Data: data}, nil
}

// Run moves the repository and refreshes the index.
func (s SwapRepo) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	sp := p.(*SwapRepoParams)
	file, before, after, from, err := s.plan(ctx, t, sp)
	if err != nil {
		return Result{}, err
	}
	st := swapRepoState{File: file, From: from, To: sp.Minor, Refreshed: sp.Refresh}
	if before == after {
		return Result{Msg: fmt.Sprintf("%s already on v%s", file, sp.Minor), Data: asData(st)}, nil
	}
	st.Backup, err = writeFileAtomic(ctx, t.Conn, file, after, sp.Backup, t.Clock.Now(), fileAttrs{})
	if err != nil {
		return Result{}, err
	}
	res := Result{Changed: true, Msg: fmt.Sprintf("moved %s from v%s to v%s", file, from, sp.Minor),
		Diff: unifiedDiff(file, before, after), Data: asData(st)}
	if st.Refreshed {
		if err := refreshIndex(ctx, t.Conn, file); err != nil {
			return res, err
		}
	}
	return res, nil
}

// swapRepoState is swap-repo's undo state (and what register shows).
type swapRepoState struct {
	File      string `json:"file"`
	From      string `json:"from"`
	To        string `json:"to"`
	Backup    string `json:"backup"`
	Refreshed bool   `json:"refreshed"` // the step refreshed the package index
}

// Undo puts the previous definition back, and refreshes the index when the
// step did. A step that changed nothing has nothing to undo.
func (s SwapRepo) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	if !r.Changed {
		return nil
	}
	st, err := loadState[swapRepoState](r)
	if err != nil {
		return err
	}
	if st.Backup == "" || st.File == "" {
		return errors.New("swap-repo: no backup to restore (backup: false)")
	}
	if _, err := runScript(ctx, t.Conn, `cp -p -- "$1" "$2"`, st.Backup, st.File); err != nil {
		return fmt.Errorf("restore %s: %w", st.File, err)
	}
	if !st.Refreshed {
		return nil
	}
	return refreshIndex(ctx, t.Conn, st.File)
}

// refreshIndex refreshes the package manager's index for a repository file.
func refreshIndex(ctx context.Context, c Conn, file string) error {
	var err error
	switch {
	case strings.HasPrefix(file, "/etc/apt/"):
		_, err = runScript(ctx, c, `DEBIAN_FRONTEND=noninteractive apt-get update -q`)
	case strings.HasPrefix(file, "/etc/zypp/"):
		_, err = runScript(ctx, c, `zypper --non-interactive refresh`)
	default:
		_, err = runScript(ctx, c, `if command -v dnf >/dev/null; then dnf makecache -q; else yum makecache -q; fi`)
	}
	if err != nil {
		return fmt.Errorf("refresh package index: %w", err)
	}
	return nil
}
