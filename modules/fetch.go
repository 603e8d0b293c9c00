package modules

import (
	"context"
	"errors"
	"fmt"
	"github.com/kubeplay/kubeplay/transport"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Fetch copies a file from the host to the runner machine.
type Fetch struct{}

// FetchParams are fetch's parameters.
type FetchParams struct {
	Src  string `yaml:"src" required:"true" doc:"absolute path on the host"`
	Dest string `yaml:"dest" required:"true" runner:"path" doc:"path on the runner machine (~ is the runner's home); parent directories are created 0700"`
	Mode string `yaml:"mode" default:"0600" doc:"mode of the local file, octal"`

	perm os.FileMode
}

// Validate checks the parameters.
func (p *FetchParams) Validate() error {
	if !path.IsAbs(p.Src) {
		return fmt.Errorf("src %q is not an absolute path", p.Src)
	}
	if p.Dest == "" {
		return errors.New("dest is required")
	}
	m, err := strconv.ParseUint(p.Mode, 8, 32)
	if err != nil || m&^0o777 != 0 {
		return fmt.Errorf("mode %q: octal permission bits, e.g. 0600", p.Mode)
	}
	p.perm = os.FileMode(m)
	return nil
}

func (Fetch) Name() string { return "fetch" }
func (Fetch) Doc() string {
	return "Copy a file from the host to the runner machine over SFTP (for example a refreshed admin.conf). The local file is replaced atomically with the given mode (default 0600); unchanged when the content is the same. Content is never logged."
}
func (Fetch) NewParams() Params { return &FetchParams{} }

func (p *FetchParams) dest() (string, error) { return runnerPath(p.Dest) }

// runnerPath makes a path on the runner machine absolute, with ~ as the
// runner's home.
func runnerPath(d string) (string, error) {
	if d == "~" || strings.HasPrefix(d, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		d = filepath.Join(home, strings.TrimPrefix(d, "~"))
	}
	return filepath.Abs(d)
}

func (p *FetchParams) read(ctx context.Context, t *Target) ([]byte, string, bool, error) {
	r, ok := t.Conn.(transport.FileReader)
	if !ok {
		return nil, "", false, errors.New("fetch needs an SSH (or local) connection")
	}
	dest, err := p.dest()
	if err != nil {
		return nil, "", false, err
	}
	b, err := r.ReadFile(ctx, p.Src)
	if err != nil {
		return nil, "", false, fmt.Errorf("fetch %s: %w", p.Src, err)
	}
	old, err := os.ReadFile(dest)
	same := err == nil && string(old) == string(b)
	if same {
		if st, err := os.Stat(dest); err == nil && st.Mode().Perm() != p.perm {
			same = false
		}
	}
	return b, dest, same, nil
}

// Check reads the remote file and says whether the local copy differs.
func (Fetch) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	_, dest, same, err := p.(*FetchParams).read(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if same {
		return Result{Msg: dest + " is up to date"}, nil
	}
	return Result{Changed: true, Msg: "would update " + dest}, nil
}

// Run copies the file.
func (Fetch) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	fp := p.(*FetchParams)
	b, dest, same, err := fp.read(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if same {
		return Result{Msg: dest + " is up to date", Data: map[string]any{"dest": dest}}, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
		return Result{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".kubeplay-*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(fp.perm); err != nil {
		tmp.Close()
		return Result{}, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return Result{}, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Result{}, err
	}
	if err := tmp.Close(); err != nil {
		return Result{}, err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return Result{}, err
	}
	return Result{Changed: true, Msg: fmt.Sprintf("fetched %s:%s to %s (%d bytes)", t.Host.Name, fp.Src, dest, len(b)), Data: map[string]any{"dest": dest}}, nil
}
