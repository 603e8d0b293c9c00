package modules

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubeplay/kubeplay/secret"
)

// Template renders a file of the runner machine with {{ }} expressions and
// writes the result on the host.
type Template struct{ fileEdit }

// TemplateParams are template's parameters.
type TemplateParams struct {
	Src       string `yaml:"src" required:"true" runner:"path" doc:"template file on the runner machine (~ is the runner's home); {{ expr }} sees params, vars, host, facts and registered results"`
	Dest      string `yaml:"dest" required:"true" doc:"absolute path on the host"`
	fileAttrs `yaml:",inline"`
	Backup    bool `yaml:"backup" default:"true" doc:"keep a timestamped copy of a replaced file, for rollback"`
}

// Validate checks the parameters.
func (p *TemplateParams) Validate() error {
	if err := absPath("dest", p.Dest); err != nil {
		return err
	}
	if p.Src == "" {
		return errors.New("src is required")
	}
	if err := checkRunnerFile(p.Src); err != nil {
		return err
	}
	return p.fileAttrs.validate()
}

func (Template) Name() string { return "template" }
func (Template) Doc() string {
	return "Render a file of the runner machine whose {{ expr }} parts see params, vars, host, facts and registered results, and write it on the host like copy (atomic, mode/owner, backup). A template that uses a secret yields a secret file: 0600 when new, never diffed or logged."
}
func (Template) NewParams() Params { return &TemplateParams{} }

func (p *TemplateParams) plan(ctx context.Context, t *Target) (*fileChange, error) {
	text, err := readRunnerFile(p.Src)
	if err != nil {
		return nil, err
	}
	if t.Render == nil {
		return nil, errors.New("templates cannot be rendered here")
	}
	v, err := t.Render(text)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", p.Src, err)
	}
	var content string
	isSecret := false
	switch x := v.(type) {
	case secret.String:
		content, isSecret = x.Reveal(), true
	case string:
		content = x
	case nil:
	default:
		content = fmt.Sprint(x)
	}
	return planWrite(ctx, t, p.Dest, content, isSecret, p.fileAttrs, p.Backup)
}
