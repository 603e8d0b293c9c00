package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Selector picks one document of a multi-document file. Empty fields match
// any document; Index counts documents from 0 (nil: any).
type Selector struct {
	Kind       string `yaml:"kind" doc:"the document's kind"`
	APIVersion string `yaml:"api_version" doc:"the document's apiVersion"`
	Index      *int   `yaml:"index" doc:"the document's position in the file, from 0"`
}

// Op is one edit. Op is one of set, delete, merge, append, remove_item,
// set-flag, set-arg and add-volume-mount; the fields each one reads are
// documented on them.
type Op struct {
	Op    string `yaml:"op" required:"true" doc:"set, delete, merge, append, remove_item, set-flag, set-arg or add-volume-mount"`
	Path  string `yaml:"path" doc:"set/delete/merge/append/remove_item: a.b[0].c (merge: empty for the whole document), containers[name=etcd].command, evictionHard.\"memory.available\"; set-arg: the kubeadm component (apiServer, controllerManager, scheduler, etcd.local)"`
	Value any    `yaml:"value" doc:"set/merge/append/remove_item: the value (merge: a mapping, merged deeply); set-flag/set-arg: the flag's value"`

	Container string `yaml:"container" doc:"set-flag/add-volume-mount: the static pod's container"`
	Flag      string `yaml:"flag" doc:"set-flag/set-arg: the flag without dashes, e.g. audit-log-maxage"`
	State     string `yaml:"state" doc:"set-flag/set-arg: present (default) or absent"`

	Name      string `yaml:"name" doc:"add-volume-mount: the volume's name"`
	MountPath string `yaml:"mount_path" doc:"add-volume-mount: where the container sees it"`
	HostPath  string `yaml:"host_path" doc:"add-volume-mount: the node path"`
	Type      string `yaml:"type" doc:"add-volume-mount: hostPath type (File, DirectoryOrCreate, ...)"`
	ReadOnly  bool   `yaml:"read_only" doc:"add-volume-mount: mount read-only"`
}

// Validate checks an op's fields before anything is read.
func (o *Op) Validate() error {
	need := func(fields ...string) error {
		for i := 0; i < len(fields); i += 2 {
			if fields[i+1] == "" {
				return fmt.Errorf("op %s: %s is required", o.Op, fields[i])
			}
		}
		return nil
	}
	switch o.Op {
	case "set", "merge", "append", "remove_item":
		if o.Op != "merge" {
			if err := need("path", o.Path); err != nil {
				return err
			}
		}
		if o.Op == "merge" {
			if _, ok := o.Value.(map[string]any); !ok {
				return fmt.Errorf("op merge: value must be a mapping")
			}
		}
	case "delete":
		if err := need("path", o.Path); err != nil {
			return err
		}
	case "set-flag", "set-arg":
		if o.Op == "set-flag" {
			if err := need("container", o.Container, "flag", o.Flag); err != nil {
				return err
			}
		} else if err := need("path", o.Path, "flag", o.Flag); err != nil {
			return err
		}
		o.Flag = strings.TrimLeft(o.Flag, "-")
		if o.State == "" {
			o.State = "present"
		}
		if o.State != "present" && o.State != "absent" {
			return fmt.Errorf("op set-flag: state %q: want present or absent", o.State)
		}
	case "add-volume-mount":
		if err := need("container", o.Container, "name", o.Name, "mount_path", o.MountPath, "host_path", o.HostPath); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown op %q (want set, delete, merge, append, remove_item, set-flag, set-arg or add-volume-mount)", o.Op)
	}
	if o.Path != "" {
		if _, err := parsePath(o.Path); err != nil {
			return err
		}
	}
	return nil
}

// prim is a primitive edit: set (with upsert of [k=v] items), delete, or
// append-if-absent.
type prim struct {
	kind string
	segs []segment
	val  any
}

// ErrNoDocument is returned when no document matches the selector.
var ErrNoDocument = errors.New("no document matches")

// Apply edits src and returns the new content; when nothing changes, src
// itself is returned byte for byte. With create, an empty src (or one with
// no matching document when the selector is empty) starts as an empty
// mapping.
func Apply(src []byte, sel Selector, ops []Op, create bool) ([]byte, error) {
	f, err := parser.ParseBytes(src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	before, err := decodeDocs(f)
	if err != nil {
		return nil, err
	}
	idx, err := pick(before, sel)
	if err != nil {
		if !(create && errors.Is(err, ErrNoDocument) && len(bytes.TrimSpace(src)) == 0) {
			return nil, err
		}
		f = &ast.File{Docs: []*ast.DocumentNode{ast.Document(nil, nil)}}
		before, idx = []any{nil}, 0
	}
	doc := f.Docs[idx]
	want, err := normalize(before[idx])
	if err != nil {
		return nil, err
	}
	changed := false
	for i := range ops {
		ps, err := expand(want, &ops[i])
		if err != nil {
			return nil, fmt.Errorf("op %d (%s): %w", i+1, ops[i].Op, err)
		}
		for _, p := range ps {
			next, err := applyData(want, p)
			if err != nil {
				return nil, fmt.Errorf("op %d (%s) %s: %w", i+1, ops[i].Op, pathString(p.segs), err)
			}
			if deepEqual(next, want) {
				continue
			}
			// applyData works on a copy; keep its result
			want, changed = next, true
			if err := applyAST(doc, p); err != nil {
				return nil, fmt.Errorf("op %d (%s) %s: %w", i+1, ops[i].Op, pathString(p.segs), err)
			}
		}
	}
	if !changed {
		return src, nil
	}
	out := []byte(f.String())
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if err := verify(out, before, idx, want); err != nil {
		return nil, err
	}
	return out, nil
}

// verify proves the printed file decodes to the intended data, with every
// other document unchanged.
func verify(out []byte, before []any, idx int, want any) error {
	g, err := parser.ParseBytes(out, 0)
	if err != nil {
		return fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	after, err := decodeDocs(g)
	if err != nil {
		return err
	}
	if len(after) != len(before) {
		return fmt.Errorf("internal error: the edit changed the number of documents (%d → %d)", len(before), len(after))
	}
	for i := range after {
		exp := before[i]
		if i == idx {
			exp = want
		}
		if exp, err = normalize(exp); err != nil {
			return err
		}
		if !deepEqual(after[i], exp) {
			return fmt.Errorf("internal error: the edited document %d does not read back as intended; nothing was written", i)
		}
	}
	return nil
}

func decodeDocs(f *ast.File) ([]any, error) {
	out := make([]any, 0, len(f.Docs))
	for i, d := range f.Docs {
		var v any
		if d.Body != nil {
			if err := yaml.NodeToValue(d.Body, &v); err != nil {
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
		}
		out = append(out, v)
	}
	if len(out) == 1 && out[0] == nil && len(f.Docs[0].String()) == 0 {
		return nil, nil
	}
	return out, nil
}

func pick(docs []any, sel Selector) (int, error) {
	var hits []int
	for i, d := range docs {
		m, _ := d.(map[string]any)
		if sel.Index != nil && *sel.Index != i {
			continue
		}
		if sel.Kind != "" && fmt.Sprint(m["kind"]) != sel.Kind {
			continue
		}
		if sel.APIVersion != "" && fmt.Sprint(m["apiVersion"]) != sel.APIVersion {
			continue
		}
		hits = append(hits, i)
	}
	switch len(hits) {
	case 0:
		return 0, fmt.Errorf("%w %s (the file has %d)", ErrNoDocument, describe(sel), len(docs))
	case 1:
		return hits[0], nil
	}
	return 0, fmt.Errorf("%d documents match %s; add kind, api_version or index to pick one", len(hits), describe(sel))
}

func describe(sel Selector) string {
	var parts []string
	if sel.Kind != "" {
		parts = append(parts, "kind "+sel.Kind)
	}
	if sel.APIVersion != "" {
		parts = append(parts, "apiVersion "+sel.APIVersion)
	}
	if sel.Index != nil {
		parts = append(parts, fmt.Sprintf("index %d", *sel.Index))
	}
	if len(parts) == 0 {
		return "the selector (any document)"
	}
	return strings.Join(parts, ", ")
}

// applyData applies p to a deep copy of cur.
func applyData(cur any, p prim) (any, error) {
	c, err := normalize(cur)
	if err != nil {
		return nil, err
	}
	switch p.kind {
	case "set":
		return dataSet(c, p.segs, p.val)
	case "delete":
		return dataDelete(c, p.segs), nil
	case "append":
		existing, ok := dataGet(c, p.segs)
		if !ok || existing == nil {
			return dataSet(c, p.segs, []any{p.val})
		}
		items, isSeq := existing.([]any)
		if !isSeq {
			return nil, errors.New("not a sequence")
		}
		for _, it := range items {
			if deepEqual(it, p.val) {
				return c, nil
			}
		}
		return dataSet(c, p.segs, append(items, p.val))
	}
	return nil, fmt.Errorf("unknown primitive %s", p.kind)
}

func applyAST(doc *ast.DocumentNode, p prim) error {
	root := slot{get: func() ast.Node { return doc.Body }, set: func(x ast.Node) { doc.Body = x }, col: 1}
	switch p.kind {
	case "set":
		return astSet(root, p.segs, p.val)
	case "delete":
		return astDelete(doc.Body, p.segs)
	}
	// append: applyData proved the item is new
	n, err := astGet(doc.Body, p.segs)
	if err != nil {
		return err
	}
	if n == nil || isNull(n) {
		return astSet(root, p.segs, []any{p.val})
	}
	u, err := unwrap(n)
	if err != nil {
		return err
	}
	sq, ok := u.(*ast.SequenceNode)
	if !ok {
		return errors.New("not a sequence")
	}
	if sq.IsFlowStyle || len(sq.Values) == 0 {
		items := []any{}
		if err := yaml.NodeToValue(sq, &items); err != nil {
			return err
		}
		return astSet(root, p.segs, append(items, p.val))
	}
	return astAppend(sq, p.val)
}

// expand turns an op into primitives against the current data.
func expand(cur any, o *Op) ([]prim, error) {
	var segs []segment
	if o.Path != "" {
		var err error
		if segs, err = parsePath(o.Path); err != nil {
			return nil, err
		}
	}
	val, err := normalize(o.Value)
	if err != nil {
		return nil, err
	}
	switch o.Op {
	case "set":
		return []prim{{kind: "set", segs: segs, val: val}}, nil
	case "delete":
		return []prim{{kind: "delete", segs: segs}}, nil
	case "append":
		return []prim{{kind: "append", segs: segs, val: val}}, nil
	case "merge":
		var out []prim
		mergePrims(cur, segs, val, &out)
		return out, nil
	case "remove_item":
		existing, _ := dataGet(cur, segs)
		items, _ := existing.([]any)
		var out []prim
		for i := len(items) - 1; i >= 0; i-- {
			if deepEqual(items[i], val) {
				out = append(out, prim{kind: "delete", segs: withIndex(segs, i)})
			}
		}
		return out, nil
	case "set-flag":
		return flagPrims(cur, o)
	case "set-arg":
		return argPrims(cur, o, segs)
	case "add-volume-mount":
		if _, ok := dataGet(cur, containerSegs(o.Container)); !ok {
			return nil, fmt.Errorf("no container %q in spec.containers", o.Container)
		}
		return mountPrims(o), nil
	}
	return nil, fmt.Errorf("unknown op %q", o.Op)
}

func withIndex(segs []segment, i int) []segment {
	return append(append([]segment{}, segs...), segment{Index: i})
}

func withKey(segs []segment, k string) []segment {
	return append(append([]segment{}, segs...), segment{Key: k, Index: -1})
}

// mergePrims merges mapping val into the mapping at segs, deeply.
func mergePrims(cur any, segs []segment, val any, out *[]prim) {
	vm, ok := val.(map[string]any)
	existing, _ := dataGet(cur, segs)
	em, isMap := existing.(map[string]any)
	if !ok || !isMap {
		*out = append(*out, prim{kind: "set", segs: segs, val: val})
		return
	}
	for _, k := range sortedKeys(vm) {
		if _, sub := vm[k].(map[string]any); sub {
			if _, esub := em[k].(map[string]any); esub {
				mergePrims(cur, withKey(segs, k), vm[k], out)
				continue
			}
		}
		*out = append(*out, prim{kind: "set", segs: withKey(segs, k), val: vm[k]})
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func containerSegs(c string) []segment {
	return []segment{{Key: "spec", Index: -1}, {Key: "containers", Index: -1}, {Index: -1, Match: &match{Key: "name", Value: c}}}
}

// flagPrims sets or removes --flag in a container's command.
func flagPrims(cur any, o *Op) ([]prim, error) {
	csegs := containerSegs(o.Container)
	if _, ok := dataGet(cur, csegs); !ok {
		return nil, fmt.Errorf("no container %q in spec.containers", o.Container)
	}
	cmd := append(csegs, segment{Key: "command", Index: -1})
	existing, _ := dataGet(cur, cmd)
	items, _ := existing.([]any)
	want := "--" + o.Flag
	if o.Value != nil && fmt.Sprint(o.Value) != "" {
		want += "=" + fmt.Sprint(o.Value)
	}
	var hits []int
	for i, it := range items {
		s := fmt.Sprint(it)
		if s == "--"+o.Flag || strings.HasPrefix(s, "--"+o.Flag+"=") {
			hits = append(hits, i)
		}
	}
	var out []prim
	if o.State == "absent" {
		for i := len(hits) - 1; i >= 0; i-- {
			out = append(out, prim{kind: "delete", segs: withIndex(cmd, hits[i])})
		}
		return out, nil
	}
	if len(hits) == 0 {
		return []prim{{kind: "append", segs: cmd, val: want}}, nil
	}
	out = append(out, prim{kind: "set", segs: withIndex(cmd, hits[0]), val: want})
	for i := len(hits) - 1; i >= 1; i-- {
		out = append(out, prim{kind: "delete", segs: withIndex(cmd, hits[i])})
	}
	return out, nil
}

// mountPrims adds (or corrects) a hostPath volume and its mount.
func mountPrims(o *Op) []prim {
	hp := map[string]any{"path": o.HostPath}
	if o.Type != "" {
		hp["type"] = o.Type
	}
	vol := map[string]any{"name": o.Name, "hostPath": hp}
	mount := map[string]any{"name": o.Name, "mountPath": o.MountPath}
	if o.ReadOnly {
		mount["readOnly"] = true
	}
	volSegs := []segment{{Key: "spec", Index: -1}, {Key: "volumes", Index: -1}, {Index: -1, Match: &match{Key: "name", Value: o.Name}}}
	mountSegs := append(containerSegs(o.Container), segment{Key: "volumeMounts", Index: -1}, segment{Index: -1, Match: &match{Key: "name", Value: o.Name}})
	v, _ := normalize(vol)
	m, _ := normalize(mount)
	return []prim{{kind: "set", segs: volSegs, val: v}, {kind: "set", segs: mountSegs, val: m}}
}

// argPrims sets or removes an extra argument of a kubeadm component (the
// mapping at segs: apiServer, controllerManager, scheduler, etcd.local) in
// the shape its extraArgs has, else in the shape of the document's API
// version: a list of {name, value} from kubeadm.k8s.io/v1beta4 on, a
// mapping of name to value in v1beta3 and before. An argument given more
// than once in a list is left once.
func argPrims(cur any, o *Op, segs []segment) ([]prim, error) {
	args := withKey(segs, "extraArgs")
	existing, _ := dataGet(cur, args)
	var list bool
	switch existing.(type) {
	case []any:
		list = true
	case map[string]any:
	case nil:
		api, _ := dataGet(cur, []segment{{Key: "apiVersion", Index: -1}})
		switch api {
		case "kubeadm.k8s.io/v1beta1", "kubeadm.k8s.io/v1beta2", "kubeadm.k8s.io/v1beta3":
		case "kubeadm.k8s.io/v1beta4":
			list = true
		default:
			return nil, fmt.Errorf("%s: apiVersion %v is no kubeadm configuration version known here (v1beta3 has extraArgs as a mapping, v1beta4 as a list)", pathString(args), api)
		}
	default:
		return nil, fmt.Errorf("%s is neither a list (kubeadm v1beta4) nor a mapping (v1beta3)", pathString(args))
	}
	value := ""
	if o.Value != nil {
		value = fmt.Sprint(o.Value)
	}
	if !list {
		if o.State == "absent" {
			return []prim{{kind: "delete", segs: withKey(args, o.Flag)}}, nil
		}
		return []prim{{kind: "set", segs: withKey(args, o.Flag), val: value}}, nil
	}
	items, _ := existing.([]any)
	var hits []int
	for i, it := range items {
		if m, ok := it.(map[string]any); ok && fmt.Sprint(m["name"]) == o.Flag {
			hits = append(hits, i)
		}
	}
	var out []prim
	keep := 0
	if o.State == "absent" {
		keep = -1
	}
	for i := len(hits) - 1; i > keep; i-- {
		out = append(out, prim{kind: "delete", segs: withIndex(args, hits[i])})
	}
	if o.State == "absent" {
		return out, nil
	}
	item := append(args, segment{Index: -1, Match: &match{Key: "name", Value: o.Flag}}, segment{Key: "value", Index: -1})
	return append(out, prim{kind: "set", segs: item, val: value}), nil
}
