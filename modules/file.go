package modules

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
)

// File sets the state of a path: a directory, a symlink, an empty file, a
// file's mode and owner, or its absence.
type File struct{}

// FileParams are file's parameters.
type FileParams struct {
	Path      string `yaml:"path" required:"true" doc:"absolute path on the host"`
	State     string `yaml:"state" default:"file" doc:"file (exists; set mode/owner), directory (mkdir -p), touch (create empty if missing), link (symlink to src), absent"`
	Src       string `yaml:"src" doc:"state link: the link's target"`
	Force     bool   `yaml:"force" doc:"link: replace a non-link at path; absent: remove a non-empty directory"`
	fileAttrs `yaml:",inline"`
	Backup    bool `yaml:"backup" default:"true" doc:"absent: move the path aside (path.kubeplay-<time>) instead of deleting it, so rollback can put it back"`
}

// Validate checks the parameters.
func (p *FileParams) Validate() error {
	if err := absPath("path", p.Path); err != nil {
		return err
	}
	switch p.State {
	case "file", "directory", "touch", "absent":
		if p.Src != "" {
			return fmt.Errorf("src is only for state link")
		}
	case "link":
		if p.Src == "" {
			return errors.New("state link needs src (the link's target)")
		}
	default:
		return fmt.Errorf("state %q: want file, directory, touch, link or absent", p.State)
	}
	if p.State == "absent" && (p.Mode != "" || p.Owner != "" || p.Group != "") {
		return errors.New("state absent takes no mode, owner or group")
	}
	return p.fileAttrs.validate()
}

func (File) Name() string { return "file" }
func (File) Doc() string {
	return "Set the state of a path: file (must exist; mode/owner), directory (created with parents), touch (an empty file when missing), link (a symlink to src) or absent (moved aside for rollback by default; a non-empty directory needs force). Rollback removes what the step created, puts back what it removed, and restores a link's old target and the old mode/owner."
}
func (File) NewParams() Params { return &FileParams{} }

// fileOp is the plan for one file step.
type fileOp struct {
	action string // "", create, remove, relink, attrs
	what   []string
}

func (p *FileParams) plan(ctx context.Context, t *Target) (statInfo, fileOp, error) {
	st, err := statPath(ctx, t.Conn, p.Path)
	if err != nil {
		return st, fileOp{}, err
	}
	var op fileOp
	wantKind := map[string]string{"file": "file", "touch": "file", "directory": "directory", "link": "link"}[p.State]
	switch {
	case p.State == "absent":
		if !st.Exists {
			return st, op, nil
		}
		if st.Kind == "directory" && !p.Force {
			r, err := runScript(ctx, t.Conn, `ls -A -- "$1" | head -n 1`, p.Path)
			if err != nil {
				return st, op, err
			}
			if strings.TrimSpace(r.Stdout) != "" {
				return st, op, fmt.Errorf("%s is a non-empty directory; set force: true to remove it", p.Path)
			}
		}
		return st, fileOp{action: "remove", what: []string{"remove " + st.Kind}}, nil
	case !st.Exists && p.State == "file":
		return st, op, fmt.Errorf("%s does not exist (state file only sets attributes; use copy, or state touch)", p.Path)
	case !st.Exists:
		return st, fileOp{action: "create", what: []string{"create " + wantKind}}, nil
	case p.State == "link" && st.Kind == "link":
		if st.Target != p.Src {
			op = fileOp{action: "relink", what: []string{fmt.Sprintf("link target %s → %s", st.Target, p.Src)}}
		}
		return st, op, nil
	case st.Kind != wantKind:
		if p.State == "link" && p.Force && st.Kind != "directory" {
			return st, fileOp{action: "relink", what: []string{"replace " + st.Kind + " with a link to " + p.Src}}, nil
		}
		return st, op, fmt.Errorf("%s is a %s, not a %s", p.Path, st.Kind, wantKind)
	}
	if ch := p.fileAttrs.changes(st); len(ch) > 0 {
		op = fileOp{action: "attrs", what: ch}
	}
	return st, op, nil
}

// Check reports what would change.
func (File) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	fp := p.(*FileParams)
	_, op, err := fp.plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if op.action == "" {
		return Result{Msg: fp.Path + " is " + fp.State}, nil
	}
	return Result{Changed: true, Msg: "would " + strings.Join(op.what, ", ") + " at " + fp.Path}, nil
}

// Run sets the state.
func (File) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	fp := p.(*FileParams)
	st, op, err := fp.plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	us := fileState{Path: fp.Path, Action: op.action, OldTarget: st.Target, OldMode: st.Mode, OldOwner: st.UID, OldGroup: st.GID}
	if op.action == "" {
		return Result{Msg: fp.Path + " is " + fp.State, Data: asData(us)}, nil
	}
	switch op.action {
	case "remove":
		if fp.Backup {
			bak := backupName(fp.Path, t.Clock.Now())
			if _, err := runScript(ctx, t.Conn, `mv -- "$1" "$2"`, fp.Path, bak); err != nil {
				return Result{}, fmt.Errorf("move %s aside: %w", fp.Path, err)
			}
			us.MovedTo = bak
		} else if _, err := runScript(ctx, t.Conn, `rm -rf -- "$1"`, fp.Path); err != nil {
			return Result{}, fmt.Errorf("remove %s: %w", fp.Path, err)
		}
	case "create":
		script := map[string]string{
			// prints the topmost directory it created, for Undo
			"directory": `top=$1; while [ ! -e "$(dirname -- "$top")" ]; do top=$(dirname -- "$top"); done
mkdir -p -- "$1"; echo "$top"`,
			"touch": `umask 022; : >> "$1"`,
			"link":  `ln -s -- "$2" "$1"`,
		}[fp.State]
		r, err := runScript(ctx, t.Conn, script, fp.Path, fp.Src)
		if err != nil {
			return Result{}, fmt.Errorf("create %s: %w", fp.Path, err)
		}
		us.CreatedTop = strings.TrimSpace(r.Stdout)
	case "relink":
		if _, err := runScript(ctx, t.Conn, `ln -sfn -- "$2" "$3" && mv -Tf -- "$3" "$1"`, fp.Path, fp.Src, sidePath(fp.Path, ".kubeplay-link")); err != nil {
			return Result{}, fmt.Errorf("link %s: %w", fp.Path, err)
		}
	}
	if fp.State != "absent" && fp.State != "link" {
		if err := setAttrs(ctx, t.Conn, fp.Path, fp.fileAttrs); err != nil {
			return Result{}, err
		}
	}
	return Result{Changed: true, Msg: strings.Join(op.what, ", ") + " at " + fp.Path, Data: asData(us)}, nil
}

// fileState is file's undo state: what it did, and what was there before.
type fileState struct {
	Path       string `json:"path"`
	Action     string `json:"action"` // remove, create, relink, attrs; "" for nothing
	OldTarget  string `json:"old_target"`
	OldMode    string `json:"old_mode"`
	OldOwner   string `json:"old_owner"`
	OldGroup   string `json:"old_group"`
	MovedTo    string `json:"moved_to"`              // where remove put the path aside
	CreatedTop string `json:"created_top,omitempty"` // the topmost directory create made
}

// Undo reverses what Run did.
func (File) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	if !r.Changed {
		return nil
	}
	fp := p.(*FileParams)
	us, err := loadState[fileState](r)
	if err != nil {
		return err
	}
	switch us.Action {
	case "remove":
		if us.MovedTo == "" {
			return fmt.Errorf("cannot restore %s: it was deleted (backup: false)", fp.Path)
		}
		_, err = runScript(ctx, t.Conn, `mv -- "$1" "$2"`, us.MovedTo, fp.Path)
	case "create":
		if fp.State == "directory" {
			// the directories it created, and only while nothing was put in them
			_, err = runScript(ctx, t.Conn, `d=$1; while rmdir -- "$d"; do [ "$d" = "$2" ] && exit 0; d=$(dirname -- "$d"); done; exit 1`,
				fp.Path, cmp.Or(us.CreatedTop, fp.Path))
		} else {
			_, err = runScript(ctx, t.Conn, `rm -f -- "$1"`, fp.Path)
		}
	case "relink":
		if us.OldTarget == "" {
			return fmt.Errorf("cannot restore %s: it was not a link before", fp.Path)
		}
		_, err = runScript(ctx, t.Conn, `ln -sfn -- "$2" "$3" && mv -Tf -- "$3" "$1"`, fp.Path, us.OldTarget, sidePath(fp.Path, ".kubeplay-link"))
	case "attrs":
		err = setAttrs(ctx, t.Conn, fp.Path, fileAttrs{Mode: us.OldMode, Owner: us.OldOwner, Group: us.OldGroup})
	}
	if err != nil {
		return fmt.Errorf("undo file %s: %w", fp.Path, err)
	}
	return nil
}
