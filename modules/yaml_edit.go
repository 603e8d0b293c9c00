package modules

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubeplay/kubeplay/internal/yamledit"
)

// YAMLEdit makes structured edits to a YAML file, keeping its comments and
// key order.
type YAMLEdit struct{ fileEdit }

// YAMLEditParams are yaml-edit's parameters.
type YAMLEditParams struct {
	Path      string            `yaml:"path" required:"true" doc:"absolute path on the host"`
	Select    yamledit.Selector `yaml:"select" doc:"which document of a multi-document file (kind, api_version, index)"`
	Ops       []yamledit.Op     `yaml:"ops" required:"true" doc:"edits in order: set, delete, merge, append (if absent), remove_item, set-flag (a static pod container's --flag), add-volume-mount (a hostPath volume and its mount)"`
	Create    bool              `yaml:"create" doc:"create a missing file as an empty mapping first"`
	fileAttrs `yaml:",inline"`
	Backup    bool `yaml:"backup" default:"true" doc:"keep a timestamped copy of the file, for rollback"`
}

// Validate checks the parameters.
func (p *YAMLEditParams) Validate() error {
	if err := absPath("path", p.Path); err != nil {
		return err
	}
	if len(p.Ops) == 0 {
		return errors.New("ops is required")
	}
	for i := range p.Ops {
		if err := p.Ops[i].Validate(); err != nil {
			return fmt.Errorf("ops[%d]: %w", i, err)
		}
	}
	return p.fileAttrs.validate()
}

func (YAMLEdit) Name() string { return "yaml-edit" }
func (YAMLEdit) Doc() string {
	return "Edit a YAML file by path (set, delete, deep merge, append if absent, remove_item) in one selected document of a multi-document file, or set a static pod container's --flag and add a hostPath volume with its mount. Only the touched lines change: comments, key order and the other documents are kept, and the result is read back and compared with the intended data before it is written (atomically, with a backup)."
}
func (YAMLEdit) NewParams() Params { return &YAMLEditParams{} }

// planYAML reads path and computes the edited content.
func planYAML(ctx context.Context, t *Target, path string, sel yamledit.Selector, ops []yamledit.Op, create bool) (statInfo, string, string, error) {
	st, before, err := readToEdit(ctx, t.Conn, path, create)
	if err != nil {
		return st, "", "", err
	}
	after, err := yamledit.Apply([]byte(before), sel, ops, create)
	if err != nil {
		return st, before, "", fmt.Errorf("edit %s: %w", path, err)
	}
	return st, before, string(after), nil
}

func (p *YAMLEditParams) plan(ctx context.Context, t *Target) (*fileChange, error) {
	st, before, after, err := planYAML(ctx, t, p.Path, p.Select, p.Ops, p.Create)
	if err != nil {
		return nil, err
	}
	return &fileChange{Path: p.Path, Stat: st, Before: before, After: after, Attrs: p.fileAttrs,
		Backup: p.Backup, Summary: fmt.Sprintf("%d op(s)", len(p.Ops))}, nil
}
