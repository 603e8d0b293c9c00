package modules

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubeplay/kubeplay/internal/tomledit"
)

// TOMLEdit sets and deletes keys of one table of a TOML file, containerd's
// config.toml above all.
type TOMLEdit struct{ fileEdit }

// TOMLEditParams are toml-edit's parameters.
type TOMLEditParams struct {
	Path      string         `yaml:"path" required:"true" doc:"absolute path on the host"`
	Table     string         `yaml:"table" required:"true" doc:"the table as its header writes it, e.g. plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options (added at the end when missing)"`
	Set       map[string]any `yaml:"set" doc:"keys of the table to set: bool, integer, float or string values"`
	Delete    []string       `yaml:"delete" doc:"keys of the table to remove"`
	Create    bool           `yaml:"create" doc:"create a missing file"`
	fileAttrs `yaml:",inline"`
	Backup    bool `yaml:"backup" default:"true" doc:"keep a timestamped copy of the file, for rollback"`
}

// Validate checks the parameters.
func (p *TOMLEditParams) Validate() error {
	if err := absPath("path", p.Path); err != nil {
		return err
	}
	if _, err := tomledit.ParseKey(p.Table); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	if len(p.Set) == 0 && len(p.Delete) == 0 {
		return errors.New("give set or delete")
	}
	for k, v := range p.Set {
		if _, err := tomledit.Literal(v); err != nil {
			return fmt.Errorf("set.%s: %w", k, err)
		}
	}
	return p.fileAttrs.validate()
}

func (TOMLEdit) Name() string { return "toml-edit" }
func (TOMLEdit) Doc() string {
	return "Set or delete keys of one table of a TOML file (containerd's config.toml: runc's SystemdCgroup in its own options table, not every line that looks like it). Only those keys' lines change, in that table: other tables, comments and order are kept. The result is decoded and compared with the intended data before it is written (atomically, with a backup); a key also defined elsewhere (a dotted key, an inline table) is refused."
}
func (TOMLEdit) NewParams() Params { return &TOMLEditParams{} }

func (p *TOMLEditParams) plan(ctx context.Context, t *Target) (*fileChange, error) {
	st, before, err := readToEdit(ctx, t.Conn, p.Path, p.Create)
	if err != nil {
		return nil, err
	}
	after, err := tomledit.Apply([]byte(before), p.Table, p.Set, p.Delete)
	if err != nil {
		return nil, fmt.Errorf("edit %s: %w", p.Path, err)
	}
	return &fileChange{Path: p.Path, Stat: st, Before: before, After: string(after), Attrs: p.fileAttrs,
		Backup: p.Backup, Summary: fmt.Sprintf("[%s]", p.Table)}, nil
}
