package modules

import (
	"context"
	"errors"

	"github.com/kubeplay/kubeplay/secret"
)

// Copy writes a whole file on the host from inline content or a file on the
// runner machine.
type Copy struct{ fileEdit }

// CopyParams are copy's parameters.
type CopyParams struct {
	Dest          string        `yaml:"dest" required:"true" doc:"absolute path on the host"`
	Content       *string       `yaml:"content" doc:"the file's content"`
	SecretContent secret.String `yaml:"secret_content" doc:"the file's content when it holds a secret: never shown in diffs, logs or the journal; new files get 0600"`
	Src           string        `yaml:"src" runner:"path" doc:"a file on the runner machine to copy (~ is the runner's home)"`
	fileAttrs     `yaml:",inline"`
	Backup        bool `yaml:"backup" default:"true" doc:"keep a timestamped copy of a replaced file, for rollback"`
}

// Validate checks the parameters.
func (p *CopyParams) Validate() error {
	if err := absPath("dest", p.Dest); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{p.Content != nil, p.SecretContent.Reveal() != "", p.Src != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one of content, secret_content and src")
	}
	if p.Src != "" {
		if err := checkRunnerFile(p.Src); err != nil {
			return err
		}
	}
	return p.fileAttrs.validate()
}

func (Copy) Name() string { return "copy" }
func (Copy) Doc() string {
	return "Write a whole file on the host from inline content (content, or secret_content for secrets) or from a file on the runner machine (src), with mode and owner. The write is atomic (temporary file, fsync, rename); a replaced file is backed up for rollback; unchanged when content and attributes already match."
}
func (Copy) NewParams() Params { return &CopyParams{} }

func (p *CopyParams) plan(ctx context.Context, t *Target) (*fileChange, error) {
	var content string
	switch {
	case p.Content != nil:
		content = *p.Content
	case p.Src != "":
		b, err := readRunnerFile(p.Src)
		if err != nil {
			return nil, err
		}
		content = b
	default:
		content = p.SecretContent.Reveal()
	}
	return planWrite(ctx, t, p.Dest, content, p.SecretContent.Reveal() != "", p.fileAttrs, p.Backup)
}

// planWrite plans replacing dest's whole content.
func planWrite(ctx context.Context, t *Target, dest, content string, isSecret bool, attrs fileAttrs, backup bool) (*fileChange, error) {
	st, before, err := readForChange(ctx, t.Conn, dest)
	if err != nil {
		return nil, err
	}
	return &fileChange{Path: dest, Stat: st, Before: before, After: content, Attrs: attrs, Secret: isSecret, Backup: backup}, nil
}
