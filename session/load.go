package session

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml/parser"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/internal/input"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/playbooks"
)

// LoadPlaybook loads a playbook file, or a bundled playbook by name.
func LoadPlaybook(ref string) (*playbook.Playbook, error) {
	reg := modules.Builtin()
	if _, err := os.Stat(ref); err == nil {
		return playbook.LoadFile(ref, reg)
	}
	if strings.ContainsAny(ref, "/.") {
		return nil, fmt.Errorf("%w: playbook %s: no such file", failure.ErrValidation, ref)
	}
	src, err := playbooks.Source(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	return playbook.Load("bundled:"+ref+".yaml", src, reg)
}

// LoadInventory loads -i; without one, only the implicit localhost exists.
func LoadInventory(path string) (*inventory.Inventory, error) {
	if path == "" {
		return inventory.New(), nil
	}
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	return inv, nil
}

// ParseExtra parses -e values: key=value pairs or @file.yaml.
func ParseExtra(items []string) (map[string]any, error) {
	out := map[string]any{}
	for _, it := range items {
		if strings.HasPrefix(it, "@") {
			m, err := readVarsFile(it[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: -e %s: %w", failure.ErrValidation, it, err)
			}
			for k, v := range m {
				out[k] = normalize(v)
			}
			continue
		}
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: -e %q: want key=value or @file.yaml", failure.ErrValidation, it)
		}
		out[k] = v
	}
	return out, nil
}

// readVarsFile reads an -e @file: a regular file of at most
// input.MaxVarsFile bytes, one YAML mapping, without anchors or aliases (a
// few lines of aliases expand to billions of values).
func readVarsFile(path string) (map[string]any, error) {
	data, err := input.ReadFile(path, input.MaxVarsFile)
	if err != nil {
		return nil, err
	}
	if data, err = input.YAML(path, data, input.MaxVarsFile); err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, err
	}
	d := &diag.List{File: path}
	var root *ytree.Node
	if len(f.Docs) == 1 {
		root = ytree.FromAST(f.Docs[0], nil, d)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	if root == nil || (root.Kind != ytree.Map && root.Kind != ytree.Null) {
		return nil, errors.New("expected one YAML mapping of names to values")
	}
	v, err := root.Plain(nil)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// normalize converts YAML-decoded values to the forms params accept.
func normalize(v any) any {
	switch x := v.(type) {
	case uint64:
		return int64(x)
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

// SplitExtra separates playbook params from extra vars.
func SplitExtra(pb *playbook.Playbook, extra map[string]any) (params, vars map[string]any) {
	params, vars = map[string]any{}, map[string]any{}
	declared := map[string]bool{}
	for _, p := range pb.Params {
		declared[p.Name] = true
	}
	for k, v := range extra {
		if declared[k] {
			params[k] = v
		} else {
			vars[k] = v
		}
	}
	return params, vars
}
