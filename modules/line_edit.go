package modules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// LineEdit edits a text file line by line (Ansible lineinfile semantics),
// or one flag inside an env-file variable such as KUBELET_KUBEADM_ARGS.
type LineEdit struct{ fileEdit }

// LineEditParams are line-edit's parameters.
type LineEditParams struct {
	Path         string  `yaml:"path" required:"true" doc:"absolute path on the host"`
	State        string  `yaml:"state" default:"present" doc:"present or absent"`
	Regexp       string  `yaml:"regexp" doc:"line mode: lines to replace (present: the last match becomes line) or remove (absent); RE2 syntax"`
	Line         string  `yaml:"line" doc:"line mode: the line that must be present (or absent, without regexp)"`
	InsertAfter  string  `yaml:"insert_after" doc:"line mode: where a new line goes: after the last line matching this regexp, or EOF (default)"`
	InsertBefore string  `yaml:"insert_before" doc:"line mode: where a new line goes: before the last line matching this regexp, or BOF"`
	Var          string  `yaml:"var" doc:"flags mode: the env-file variable holding flags, e.g. KUBELET_KUBEADM_ARGS"`
	Flag         string  `yaml:"flag" doc:"flags mode: the flag, e.g. container-runtime-endpoint (dashes optional)"`
	Value        *string `yaml:"value" doc:"flags mode: the flag's value (none: a bare --flag)"`
	Create       bool    `yaml:"create" doc:"create the file when missing (state present)"`
	fileAttrs    `yaml:",inline"`
	Backup       bool `yaml:"backup" default:"true" doc:"keep a timestamped copy of the file, for rollback"`

	re, after, before *regexp.Regexp
}

var envVarRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the parameters and compiles the expressions.
func (p *LineEditParams) Validate() error {
	if err := absPath("path", p.Path); err != nil {
		return err
	}
	if p.State != "present" && p.State != "absent" {
		return fmt.Errorf("state %q: want present or absent", p.State)
	}
	if p.Var != "" {
		if p.Regexp != "" || p.Line != "" || p.InsertAfter != "" || p.InsertBefore != "" {
			return errors.New("flags mode (var) takes flag and value, not regexp, line or insert_*")
		}
		if !envVarRe.MatchString(p.Var) {
			return fmt.Errorf("var %q is not a variable name", p.Var)
		}
		p.Flag = strings.TrimLeft(p.Flag, "-")
		if p.Flag == "" || strings.ContainsAny(p.Flag, " \t=\"'") {
			return fmt.Errorf("flag %q: want a flag name such as container-runtime-endpoint", p.Flag)
		}
		if p.Value != nil && strings.ContainsAny(*p.Value, " \t\n\"'") {
			return fmt.Errorf("value %q: flags in an env file cannot hold spaces or quotes", *p.Value)
		}
		return p.fileAttrs.validate()
	}
	if p.Flag != "" || p.Value != nil {
		return errors.New("flag and value need var (flags mode)")
	}
	if strings.Contains(p.Line, "\n") {
		return errors.New("line must be one line")
	}
	if p.State == "present" && p.Line == "" {
		return errors.New("state present needs line")
	}
	if p.State == "absent" && p.Regexp == "" && p.Line == "" {
		return errors.New("state absent needs regexp or line")
	}
	if p.InsertAfter != "" && p.InsertBefore != "" {
		return errors.New("give insert_after or insert_before, not both")
	}
	var err error
	compile := func(name, src string, keep string) (*regexp.Regexp, error) {
		if src == "" || src == keep {
			return nil, nil
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return re, nil
	}
	if p.re, err = compile("regexp", p.Regexp, ""); err != nil {
		return err
	}
	if p.after, err = compile("insert_after", p.InsertAfter, "EOF"); err != nil {
		return err
	}
	if p.before, err = compile("insert_before", p.InsertBefore, "BOF"); err != nil {
		return err
	}
	return p.fileAttrs.validate()
}

func (LineEdit) Name() string { return "line-edit" }
func (LineEdit) Doc() string {
	return "Make sure a line is in a text file (replacing the last line matching regexp, else inserting after/before a match, EOF by default) or that matching lines are gone; or, with var, set or remove one --flag inside an env-file variable such as KUBELET_KUBEADM_ARGS in /var/lib/kubelet/kubeadm-flags.env. Atomic write, diff in --check, backup for rollback."
}
func (LineEdit) NewParams() Params { return &LineEditParams{} }

// splitLines splits text into lines, remembering a final newline.
func splitLines(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	nl := strings.HasSuffix(s, "\n")
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n"), nl
}

func joinLines(lines []string, nl bool) string {
	if len(lines) == 0 {
		return ""
	}
	s := strings.Join(lines, "\n")
	if nl {
		s += "\n"
	}
	return s
}

func lastMatch(lines []string, re *regexp.Regexp) int {
	for i := len(lines) - 1; i >= 0; i-- {
		if re.MatchString(lines[i]) {
			return i
		}
	}
	return -1
}

// editLines applies line mode to text.
func (p *LineEditParams) editLines(text string) (string, string) {
	lines, nl := splitLines(text)
	if p.State == "absent" {
		kept := slices.DeleteFunc(slices.Clone(lines), func(l string) bool {
			if p.re != nil {
				return p.re.MatchString(l)
			}
			return l == p.Line
		})
		return joinLines(kept, nl), fmt.Sprintf("removed %d line(s)", len(lines)-len(kept))
	}
	if p.re != nil {
		if i := lastMatch(lines, p.re); i >= 0 {
			lines[i] = p.Line
			return joinLines(lines, nl), fmt.Sprintf("line %d replaced", i+1)
		}
	}
	if slices.Contains(lines, p.Line) {
		return text, ""
	}
	at := len(lines)
	switch {
	case p.InsertBefore == "BOF":
		at = 0
	case p.before != nil:
		if i := lastMatch(lines, p.before); i >= 0 {
			at = i
		}
	case p.after != nil:
		if i := lastMatch(lines, p.after); i >= 0 {
			at = i + 1
		}
	}
	lines = slices.Insert(lines, at, p.Line)
	return joinLines(lines, nl || len(lines) == 1), fmt.Sprintf("line %d inserted", at+1)
}

// editFlag applies flags mode to text.
func (p *LineEditParams) editFlag(text string) (string, string) {
	lines, nl := splitLines(text)
	lineRe := regexp.MustCompile(`^(\s*(?:export\s+)?` + regexp.QuoteMeta(p.Var) + `=)(.*)$`)
	want := "--" + p.Flag
	if p.Value != nil {
		want += "=" + *p.Value
	}
	idx := -1
	for i, l := range lines {
		if lineRe.MatchString(l) {
			idx = i
		}
	}
	if idx < 0 {
		if p.State == "absent" {
			return text, ""
		}
		lines = append(lines, p.Var+`="`+want+`"`)
		return joinLines(lines, true), "added " + p.Var
	}
	m := lineRe.FindStringSubmatch(lines[idx])
	val, quote := m[2], ""
	if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
		quote, val = val[:1], val[1:len(val)-1]
	}
	args := strings.Fields(val)
	isFlag := func(a string) bool { return a == "--"+p.Flag || strings.HasPrefix(a, "--"+p.Flag+"=") }
	first := slices.IndexFunc(args, isFlag)
	var out []string
	for i, a := range args {
		switch {
		case !isFlag(a):
			out = append(out, a)
		case i == first && p.State == "present":
			out = append(out, want)
		}
	}
	if first < 0 && p.State == "present" {
		out = append(out, want)
	}
	if quote == "" {
		quote = `"`
	}
	lines[idx] = m[1] + quote + strings.Join(out, " ") + quote
	verb := "set " + want
	if p.State == "absent" {
		verb = "removed --" + p.Flag
	}
	return joinLines(lines, nl), verb + " in " + p.Var
}

func (p *LineEditParams) plan(ctx context.Context, t *Target) (*fileChange, error) {
	st, before, err := readForChange(ctx, t.Conn, p.Path)
	if err != nil {
		return nil, err
	}
	if !st.Exists && !(p.Create && p.State == "present") {
		if p.State == "absent" {
			return &fileChange{Path: p.Path, Stat: statInfo{Exists: true, Kind: "file"}}, nil
		}
		return nil, fmt.Errorf("%s does not exist (set create: true to create it)", p.Path)
	}
	var after, summary string
	if p.Var != "" {
		after, summary = p.editFlag(before)
	} else {
		after, summary = p.editLines(before)
	}
	return &fileChange{Path: p.Path, Stat: st, Before: before, After: after, Attrs: p.fileAttrs,
		Backup: p.Backup, Summary: summary}, nil
}
