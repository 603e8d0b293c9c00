package modules

import (
	"context"
	"fmt"
)

// Move renames a path on the host, for example to park a static pod
// manifest.
type Move struct{}

// MoveParams are move's parameters.
type MoveParams struct {
	Src    string `yaml:"src" required:"true" doc:"absolute path to move"`
	Dest   string `yaml:"dest" required:"true" doc:"absolute new path (not a directory to move into)"`
	Force  bool   `yaml:"force" doc:"replace an existing dest (it is kept aside as dest.kubeplay-<time> for rollback)"`
	Parent bool   `yaml:"parents" doc:"create dest's parent directories"`
}

// Validate checks the parameters.
func (p *MoveParams) Validate() error {
	if err := absPath("src", p.Src); err != nil {
		return err
	}
	if err := absPath("dest", p.Dest); err != nil {
		return err
	}
	if p.Src == p.Dest {
		return fmt.Errorf("src and dest are both %s", p.Src)
	}
	return nil
}

func (Move) Name() string { return "move" }
func (Move) Doc() string {
	return "Rename src to dest on the host. Unchanged when src is gone and dest exists (already moved). An existing dest is refused unless force, which keeps it aside for rollback. Rollback moves the path back (and the replaced dest with it)."
}
func (Move) NewParams() Params { return &MoveParams{} }

func (p *MoveParams) plan(ctx context.Context, t *Target) (bool, error) {
	src, err := statPath(ctx, t.Conn, p.Src)
	if err != nil {
		return false, err
	}
	dst, err := statPath(ctx, t.Conn, p.Dest)
	if err != nil {
		return false, err
	}
	switch {
	case !src.Exists && dst.Exists:
		return false, nil
	case !src.Exists:
		return false, fmt.Errorf("neither %s nor %s exists", p.Src, p.Dest)
	case dst.Exists && !p.Force:
		return false, fmt.Errorf("%s already exists (and so does %s); set force: true to replace it", p.Dest, p.Src)
	case dst.Exists && dst.Kind == "directory":
		return false, fmt.Errorf("%s is a directory; move does not move into directories, name the new path", p.Dest)
	}
	return true, nil
}

// Check reports whether the move would happen.
func (Move) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	mp := p.(*MoveParams)
	todo, err := mp.plan(ctx, t)
	if err != nil || !todo {
		return Result{Msg: mp.Src + " already moved to " + mp.Dest}, err
	}
	return Result{Changed: true, Msg: fmt.Sprintf("would move %s to %s", mp.Src, mp.Dest)}, nil
}

// Run moves the path.
func (Move) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	mp := p.(*MoveParams)
	todo, err := mp.plan(ctx, t)
	st := moveState{Src: mp.Src, Dest: mp.Dest}
	if err != nil || !todo {
		return Result{Msg: mp.Src + " already moved to " + mp.Dest, Data: asData(st)}, err
	}
	bak := backupName(mp.Dest, t.Clock.Now())
	r, err := runScript(ctx, t.Conn, `set -e
if [ "$4" = true ]; then mkdir -p -- "$(dirname -- "$2")"; fi
if [ -e "$2" ] || [ -L "$2" ]; then mv -T -- "$2" "$3"; echo replaced; fi
mv -T -- "$1" "$2"`, mp.Src, mp.Dest, bak, fmt.Sprint(mp.Parent))
	if err != nil {
		return Result{}, fmt.Errorf("move %s to %s: %w", mp.Src, mp.Dest, err)
	}
	if r.Stdout != "" {
		st.Replaced = bak
	}
	return Result{Changed: true, Msg: fmt.Sprintf("moved %s to %s", mp.Src, mp.Dest), Data: asData(st)}, nil
}

// moveState is move's undo state; Replaced is where the dest it replaced
// was put aside.
type moveState struct {
	Src      string `json:"src"`
	Dest     string `json:"dest"`
	Replaced string `json:"replaced"`
}

// Undo moves the path back, and the replaced dest with it.
func (Move) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	if !r.Changed {
		return nil
	}
	mp := p.(*MoveParams)
	st, err := loadState[moveState](r)
	if err != nil {
		return err
	}
	if _, err := runScript(ctx, t.Conn, `set -e
mv -T -- "$2" "$1"
if [ -n "$3" ]; then mv -T -- "$3" "$2"; fi`, mp.Src, mp.Dest, st.Replaced); err != nil {
		return fmt.Errorf("move %s back to %s: %w", mp.Dest, mp.Src, err)
	}
	return nil
}
