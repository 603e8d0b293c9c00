package modules

import (
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file holds what the file modules (copy, template, file, move,
// line-edit, yaml-edit, edit-kubelet-config) share: reading a file's state,
// planning a whole-file change, writing it atomically with a backup, and
// undoing it.

// fileAttrs are the mode and ownership a module enforces; empty fields are
// left as they are.
type fileAttrs struct {
	Mode  string `yaml:"mode" doc:"permission bits, octal (e.g. \"0644\"); default: kept, or 0644 for a new file"`
	Owner string `yaml:"owner" doc:"owning user (name or uid); default: kept, or the connecting user"`
	Group string `yaml:"group" doc:"owning group (name or gid)"`
}

var ownerRe = regexp.MustCompile(`^([a-z_][a-z0-9_.-]*\$?|[0-9]+)$`)

func (a *fileAttrs) validate() error {
	if a.Mode != "" {
		m, err := strconv.ParseUint(a.Mode, 8, 32)
		if err != nil || m&^0o7777 != 0 {
			return fmt.Errorf("mode %q: octal permission bits, e.g. \"0644\"", a.Mode)
		}
		a.Mode = fmt.Sprintf("%04o", m)
	}
	for _, x := range [][2]string{{"owner", a.Owner}, {"group", a.Group}} {
		if x[1] != "" && !ownerRe.MatchString(x[1]) {
			return fmt.Errorf("%s %q: not a user or group name or id", x[0], x[1])
		}
	}
	return nil
}

// statInfo is what a host reports about a path.
type statInfo struct {
	Exists bool
	Kind   string // file, directory, link, other
	Mode   string // 0644
	Owner  string
	Group  string
	UID    string
	GID    string
	Target string // a link's target
}

// statPath reads a path's type, mode and ownership (links are not followed).
func statPath(ctx context.Context, c Conn, p string) (statInfo, error) {
	r, err := runScript(ctx, c, `if [ ! -e "$1" ] && [ ! -L "$1" ]; then echo missing; exit 0; fi
stat -c '%F|%a|%U|%G|%u|%g' -- "$1"
if [ -L "$1" ]; then readlink -- "$1"; fi`, p)
	if err != nil {
		return statInfo{}, fmt.Errorf("stat %s: %w", p, err)
	}
	lines := strings.SplitN(strings.TrimRight(r.Stdout, "\n"), "\n", 2)
	if lines[0] == "missing" {
		return statInfo{}, nil
	}
	f := strings.Split(lines[0], "|")
	if len(f) != 6 {
		return statInfo{}, fmt.Errorf("stat %s: unexpected output %q", p, lines[0])
	}
	m, _ := strconv.ParseUint(f[1], 8, 32)
	st := statInfo{Exists: true, Mode: fmt.Sprintf("%04o", m), Owner: f[2], Group: f[3], UID: f[4], GID: f[5]}
	switch {
	case strings.Contains(f[0], "symbolic link"):
		st.Kind = "link"
		if len(lines) > 1 {
			st.Target = lines[1]
		}
	case strings.Contains(f[0], "directory"):
		st.Kind = "directory"
	case strings.Contains(f[0], "regular"):
		st.Kind = "file"
	default:
		st.Kind = "other"
	}
	return st, nil
}

// attrChanges lists what would change to give st the attributes a.
func (a fileAttrs) changes(st statInfo) []string {
	var out []string
	if a.Mode != "" && a.Mode != st.Mode {
		out = append(out, fmt.Sprintf("mode %s → %s", st.Mode, a.Mode))
	}
	if a.Owner != "" && a.Owner != st.Owner && a.Owner != st.UID {
		out = append(out, fmt.Sprintf("owner %s → %s", st.Owner, a.Owner))
	}
	if a.Group != "" && a.Group != st.Group && a.Group != st.GID {
		out = append(out, fmt.Sprintf("group %s → %s", st.Group, a.Group))
	}
	return out
}

// fileChange is a planned change of one file's content and attributes.
type fileChange struct {
	Path    string
	Stat    statInfo
	Before  string
	After   string
	Attrs   fileAttrs
	Secret  bool // the content is a secret: never diffed, new files 0600
	Backup  bool
	Summary string // what the edit does, for messages
}

// readForChange reads path for a planned edit; it must be a regular file
// (or missing).
func readForChange(ctx context.Context, c Conn, p string) (statInfo, string, error) {
	st, err := statPath(ctx, c, p)
	if err != nil {
		return st, "", err
	}
	if !st.Exists {
		return st, "", nil
	}
	if st.Kind != "file" {
		return st, "", fmt.Errorf("%s is a %s, not a regular file", p, st.Kind)
	}
	content, _, err := readFile(ctx, c, p)
	return st, content, err
}

// readToEdit is readForChange for an edit of a file that must exist unless
// create is set.
func readToEdit(ctx context.Context, c Conn, p string, create bool) (statInfo, string, error) {
	st, before, err := readForChange(ctx, c, p)
	if err == nil && !st.Exists && !create {
		err = fmt.Errorf("%s does not exist (set create: true to create it)", p)
	}
	return st, before, err
}

func (fc *fileChange) contentChanged() bool { return !fc.Stat.Exists || fc.Before != fc.After }

func (fc *fileChange) describe() (string, bool) {
	var what []string
	if !fc.Stat.Exists {
		what = append(what, "create")
	} else if fc.Before != fc.After {
		what = append(what, "edit")
	}
	what = append(what, fc.Attrs.changes(fc.Stat)...)
	if len(what) == 0 {
		return fc.Path + " is up to date", false
	}
	msg := strings.Join(what, ", ") + " " + fc.Path
	if fc.Summary != "" && fc.contentChanged() {
		msg += " (" + fc.Summary + ")"
	}
	return msg, true
}

func (fc *fileChange) diff() string {
	if fc.Secret {
		if fc.contentChanged() {
			return fmt.Sprintf("--- %s\n+++ %s\n(secret content not shown)\n", fc.Path, fc.Path)
		}
		return ""
	}
	if !fc.contentChanged() {
		return ""
	}
	return unifiedDiff(fc.Path, fc.Before, fc.After)
}

// apply makes the change, or in check mode predicts it. Data carries path,
// backup and created for Undo.
func (fc *fileChange) apply(ctx context.Context, t *Target) (Result, error) {
	msg, changed := fc.describe()
	res := Result{Changed: changed, Diff: fc.diff(), Data: asData(fileChangeState{Path: fc.Path})}
	if !changed {
		res.Msg = msg
		return res, nil
	}
	if t.Check {
		res.Msg = "would " + msg
		return res, nil
	}
	attrs := fc.Attrs
	if !fc.Stat.Exists && attrs.Mode == "" {
		attrs.Mode = "0644"
		if fc.Secret {
			attrs.Mode = "0600"
		}
	}
	if fc.contentChanged() {
		bak, err := writeFileAtomic(ctx, t.Conn, fc.Path, fc.After, fc.Backup && fc.Stat.Exists, t.Clock.Now(), attrs)
		if err != nil {
			return Result{}, err
		}
		res.Data = asData(fileChangeState{Path: fc.Path, Backup: bak, Created: !fc.Stat.Exists})
	} else if err := setAttrs(ctx, t.Conn, fc.Path, attrs); err != nil {
		return Result{}, err
	}
	res.Msg = msg
	return res, nil
}

// fileChangeState is the undo state of a planned file change: the file, its
// backup, and whether the step created it.
type fileChangeState struct {
	Path    string `json:"path"`
	Backup  string `json:"backup"`
	Created bool   `json:"created"`
}

// setAttrs applies mode and ownership to an existing path.
func setAttrs(ctx context.Context, c Conn, p string, a fileAttrs) error {
	_, err := runScript(ctx, c, `set -e
if [ -n "$2" ]; then chmod "$2" -- "$1"; fi
if [ -n "$3$4" ]; then chown -h "$3${4:+:$4}" -- "$1"; fi`, p, a.Mode, a.Owner, a.Group)
	if err != nil {
		return fmt.Errorf("set mode/owner of %s: %w", p, err)
	}
	return nil
}

// undoFileChange reverses a change recorded by apply: a created file is
// removed; an edited one gets its backup back.
func undoFileChange(ctx context.Context, t *Target, r Result) error {
	st, err := loadState[fileChangeState](r)
	p, bak := st.Path, st.Backup
	if err != nil || p == "" || !r.Changed {
		return err
	}
	if st.Created {
		if _, err := runScript(ctx, t.Conn, `rm -f -- "$1"`, p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		return nil
	}
	if bak == "" {
		return fmt.Errorf("cannot restore %s: no backup was kept (backup: false, or only attributes changed)", p)
	}
	if _, err := runScript(ctx, t.Conn, `cp -p -- "$1" "$3" && mv -f -- "$3" "$2"`, bak, p, sidePath(p, ".kubeplay-restore")); err != nil {
		return fmt.Errorf("restore %s from %s: %w", p, bak, err)
	}
	return nil
}

// absPath checks a host path parameter.
func absPath(name, p string) error {
	if p == "" {
		return fmt.Errorf("%s is required", name)
	}
	if !path.IsAbs(p) {
		return fmt.Errorf("%s %q is not an absolute path", name, p)
	}
	if path.Clean(p) == "/" {
		return fmt.Errorf("%s: refusing to work on /", name)
	}
	return nil
}

// checkRunnerFile checks that src names a regular file on the runner
// machine.
func checkRunnerFile(src string) error {
	p, err := runnerPath(src)
	if err != nil {
		return err
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("src %s: not a readable regular file on the runner machine", p)
	}
	return nil
}

// readRunnerFile reads a file of the runner machine.
func readRunnerFile(src string) (string, error) {
	p, err := runnerPath(src)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read src: %w", err)
	}
	return string(b), nil
}

// asCheck is t in check mode: a module's Check runs its Run path, which
// only predicts when t.Check is set.
func asCheck(t *Target) *Target {
	c := *t
	c.Check = true
	return &c
}

// backupName is where a backup of p taken at now goes.
func backupName(p string, now time.Time) string {
	return sidePath(p, ".kubeplay-"+now.UTC().Format("20060102T150405.000Z"))
}

// sidePath is where a file kubeplay parks beside p goes (a backup, a
// temporary file, a moved-aside original): p+suffix, or, in a static pod
// directory, the hidden .NAME+suffix. The kubelet runs every file of its
// staticPodPath whose name does not start with a dot (pkg/kubelet/config
// file.go globs "[^.]*"), so a visible backup there would be a second
// static pod, and a moved-aside manifest would keep its pod running.
func sidePath(p, suffix string) string {
	dir, base := path.Split(p)
	if isStaticPodDir(path.Clean(dir)) {
		return dir + "." + base + suffix
	}
	return p + suffix
}

// isStaticPodDir reports whether dir is a kubelet staticPodPath:
// kubeadm's /etc/kubernetes/manifests (any directory named manifests),
// or /etc/kubelet.d.
func isStaticPodDir(dir string) bool {
	return path.Base(dir) == "manifests" || dir == "/etc/kubelet.d"
}

// filePlanner is a params type whose step is one planned file change.
type filePlanner interface {
	plan(ctx context.Context, t *Target) (*fileChange, error)
}

// fileEdit gives a file module (copy, template, line-edit, yaml-edit,
// edit-kubelet-config) its Check, Run and Undo from its params' plan.
type fileEdit struct{}

// Check reports what would change, with a diff.
func (fileEdit) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return fileEdit{}.Run(ctx, asCheck(t), p)
}

// Run makes the planned change (only predicts it in check mode).
func (fileEdit) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	fc, err := p.(filePlanner).plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	return fc.apply(ctx, t)
}

// Undo restores the file from its backup, or removes a file the step created.
func (fileEdit) Undo(ctx context.Context, t *Target, _ Params, r Result) error {
	return undoFileChange(ctx, t, r)
}
