// Package playbooks holds the bundled playbooks, one YAML and one short .md
// per runbook, embedded in the binary.
package playbooks

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml *.md
var files embed.FS

// Names lists the bundled playbooks.
func Names() []string {
	entries, _ := fs.Glob(files, "*.yaml")
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e, ".yaml"))
	}
	sort.Strings(out)
	return out
}

// Source returns a bundled playbook's YAML.
func Source(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no bundled playbook %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Doc returns a bundled playbook's .md, if any.
func Doc(name string) string {
	b, _ := files.ReadFile(name + ".md")
	return string(b)
}
