package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/parser"

	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/internal/input"
	"github.com/kubeplay/kubeplay/internal/ytree"
)

// Load reads an inventory file in kubeplay YAML, Ansible YAML or Ansible INI
// form (detected from the content).
func Load(path string) (*Inventory, error) {
	data, err := input.ReadFile(path, input.MaxInventory)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(path, data)
}

// Parse parses inventory content; name is used in error positions.
func Parse(name string, data []byte) (*Inventory, error) {
	data, err := input.YAML(name, data, input.MaxInventory)
	if err != nil {
		return nil, err
	}
	if looksINI(data) {
		inv, err := parseINI(name, data)
		if err != nil {
			return nil, err
		}
		return inv, inv.finalize()
	}
	d := &diag.List{File: name}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", name, err)
	}
	var root *ytree.Node
	if len(f.Docs) > 0 {
		root = ytree.FromAST(f.Docs[0], nil, d)
	}
	if root == nil || root.Kind != ytree.Map {
		d.At(nil, "inventory must be a mapping")
		return nil, d.Err()
	}
	inv := New()
	if root.Get("all") != nil && len(root.Keys) == 1 {
		inv.ansibleGroup("all", root.Get("all"), d)
	} else {
		inv.native(root, d)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return inv, inv.finalize()
}

var iniSection = regexp.MustCompile(`(?m)^\s*\[[^\]]+\]\s*$`)

func looksINI(data []byte) bool { return iniSection.Match(data) }

// hostSpec is a host entry of kubeplay's format.
type hostSpec struct {
	Address      string         `yaml:"address"`
	Port         int            `yaml:"port"`
	User         string         `yaml:"user"`
	IdentityFile string         `yaml:"identity_file"`
	Become       *bool          `yaml:"become"`
	NodeName     string         `yaml:"node_name"`
	ProxyJump    string         `yaml:"proxy_jump"`
	Vars         map[string]any `yaml:"vars"`
}

type groupSpec struct {
	Hosts    []string       `yaml:"hosts"`
	Children []string       `yaml:"children"`
	Vars     map[string]any `yaml:"vars"`
}

// native loads kubeplay's format (DESIGN §4).
func (inv *Inventory) native(root *ytree.Node, d *diag.List) {
	for _, kv := range root.Keys {
		switch kv.Name {
		case "defaults":
			var hs hostSpec
			ytree.Decode(kv.Val, &hs, nil, nil, d)
			for k, v := range hs.vars() {
				inv.Defaults[k] = v
			}
		case "bastion":
			var b Bastion
			ytree.Decode(kv.Val, &b, nil, nil, d)
			inv.Bastion = &b
		case "kubeconfig":
			var k KubeconfigSource
			ytree.Decode(kv.Val, &k, nil, nil, d)
			if k.FromHost == "" {
				d.At(kv.Tok, "kubeconfig: from_host is required")
			}
			inv.Kubeconfig = &k
		case "roles":
			var m map[string]string
			ytree.Decode(kv.Val, &m, nil, nil, d)
			for r, p := range m {
				if !slices.Contains(RoleNames(), r) {
					d.At(kv.Tok, "roles: %q is not a role (roles: %s)", r, strings.Join(RoleNames(), ", "))
				}
				if strings.TrimSpace(p) == "" {
					d.At(kv.Tok, "roles: %s: empty host pattern", r)
				}
			}
			inv.RoleMap = m
		case "hosts":
			if !isMap(kv, "a mapping of host names to their settings (hosts: {cp1: {address: 10.0.0.11}})", d) {
				continue
			}
			for _, h := range kv.Val.Keys {
				var hs hostSpec
				ytree.Decode(h.Val, &hs, nil, nil, d)
				host := inv.AddHost(h.Name)
				for k, v := range hs.vars() {
					host.Vars[k] = v
				}
			}
		case "groups":
			if !isMap(kv, "a mapping of group names (groups: {workers: {hosts: [w1, w2]}})", d) {
				continue
			}
			for _, g := range kv.Val.Keys {
				var gs groupSpec
				ytree.Decode(g.Val, &gs, nil, nil, d)
				inv.group(g.Name)
				for _, h := range gs.Hosts {
					inv.AddToGroup(g.Name, h)
				}
				for _, c := range gs.Children {
					inv.AddChild(g.Name, c)
				}
				inv.SetGroupVars(g.Name, gs.Vars)
			}
		default:
			d.At(kv.Tok, "unknown key %q (allowed: bastion, defaults, groups, hosts, kubeconfig, roles)", kv.Name)
		}
	}
	for _, g := range inv.gorder {
		for _, c := range inv.groups[g].Children {
			if _, ok := inv.groups[c]; !ok {
				d.At(nil, "group %q: child group %q is not defined", g, c)
			}
		}
	}
}

// vars turns the typed fields into the canonical connection variables.
func (hs *hostSpec) vars() map[string]any {
	out := map[string]any{}
	for k, v := range hs.Vars {
		out[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("address", hs.Address)
	set("user", hs.User)
	set("identity_file", hs.IdentityFile)
	set("node_name", hs.NodeName)
	set("proxy_jump", hs.ProxyJump)
	if hs.Port != 0 {
		out["port"] = hs.Port
	}
	if hs.Become != nil {
		out["become"] = *hs.Become
	}
	return out
}

// ansibleGroup loads an Ansible YAML inventory group (hosts, vars, children).
func (inv *Inventory) ansibleGroup(name string, n *ytree.Node, d *diag.List) {
	inv.group(name)
	if n == nil || n.Kind == ytree.Null {
		return
	}
	if n.Kind != ytree.Map {
		d.At(n.Tok, "group %q: expected a mapping", name)
		return
	}
	for _, kv := range n.Keys {
		switch kv.Name {
		case "hosts":
			if !isMap(kv, "a mapping of host names (hosts: {cp1: {ansible_host: 10.0.0.11}})", d) {
				continue
			}
			for _, h := range kv.Val.Keys {
				names, err := expandRange(h.Name)
				if err != nil {
					d.At(h.Tok, "%v", err)
					continue
				}
				var vars map[string]any
				if h.Val != nil && h.Val.Kind != ytree.Null {
					ytree.Decode(h.Val, &vars, nil, nil, d)
				}
				for _, hn := range names {
					if name == "all" {
						inv.AddHost(hn)
					} else {
						inv.AddToGroup(name, hn)
					}
					for k, v := range vars {
						inv.hosts[hn].Vars[k] = v
					}
				}
			}
		case "vars":
			var vars map[string]any
			ytree.Decode(kv.Val, &vars, nil, nil, d)
			inv.SetGroupVars(name, vars)
		case "children":
			if !isMap(kv, "a mapping of group names (children: {kube_node: {}})", d) {
				continue
			}
			for _, c := range kv.Val.Keys {
				if name != "all" {
					inv.AddChild(name, c.Name)
				}
				inv.ansibleGroup(c.Name, c.Val, d)
			}
		default:
			d.At(kv.Tok, "group %q: unknown key %q (allowed: children, hosts, vars)", name, kv.Name)
		}
	}
}

// parseINI loads an Ansible INI inventory.
func parseINI(name string, data []byte) (*Inventory, error) {
	inv := New()
	d := &diag.List{File: name}
	section, kind := "ungrouped", "hosts"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxINILine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, ";") {
			continue
		}
		if strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]") {
			section, kind = text[1:len(text)-1], "hosts"
			if i := strings.Index(section, ":"); i >= 0 {
				section, kind = section[:i], section[i+1:]
			}
			if kind != "hosts" && kind != "vars" && kind != "children" {
				d.Diags = append(d.Diags, diag.Diag{File: name, Line: line, Col: 1, Msg: fmt.Sprintf("unknown section kind %q", kind)})
			}
			inv.group(section)
			continue
		}
		fields, err := splitINI(text)
		if err != nil {
			d.Diags = append(d.Diags, diag.Diag{File: name, Line: line, Col: 1, Msg: err.Error()})
			continue
		}
		switch kind {
		case "hosts":
			vars, err := iniVars(fields[1:])
			if err != nil {
				d.Diags = append(d.Diags, diag.Diag{File: name, Line: line, Col: 1, Msg: err.Error()})
				continue
			}
			hosts, err := expandRange(fields[0])
			if err != nil {
				d.Diags = append(d.Diags, diag.Diag{File: name, Line: line, Col: 1, Msg: err.Error()})
				continue
			}
			for _, h := range hosts {
				if section == "ungrouped" || section == "all" {
					inv.AddHost(h)
				} else {
					inv.AddToGroup(section, h)
				}
				for k, v := range vars {
					inv.hosts[h].Vars[k] = v
				}
			}
		case "vars":
			vars, err := iniVars(fields)
			if err != nil {
				d.Diags = append(d.Diags, diag.Diag{File: name, Line: line, Col: 1, Msg: err.Error()})
				continue
			}
			inv.SetGroupVars(section, vars)
		case "children":
			inv.AddChild(section, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		// a line past maxINILine: never a silently shorter inventory
		d.Diags = append(d.Diags, diag.Diag{File: name, Line: line + 1, Col: 1, Msg: fmt.Sprintf("line longer than %d bytes: %v", maxINILine, err)})
	}
	return inv, d.Err()
}

// maxINILine bounds one line of an INI inventory.
const maxINILine = 1 << 20

// isMap reports whether kv's value is a mapping (or empty); otherwise it
// records a located error saying what belongs there.
func isMap(kv ytree.Key, want string, d *diag.List) bool {
	if kv.Val == nil || kv.Val.Kind == ytree.Null || kv.Val.Kind == ytree.Map {
		return true
	}
	d.At(kv.Val.Tok, "%s: expected %s, got %s", kv.Name, want, ytree.Describe(kv.Val))
	return false
}

// splitINI splits a line on whitespace, honouring quotes.
func splitINI(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote rune
	inField := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inField = r, true
		case r == ' ' || r == '\t':
			if inField {
				out = append(out, cur.String())
				cur.Reset()
				inField = false
			}
		case r == '#' && !inField:
			return out, nil
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inField {
		out = append(out, cur.String())
	}
	return out, nil
}

// iniVars parses key=value pairs; numbers and booleans are typed as Ansible
// types literal values.
func iniVars(fields []string) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("expected key=value, got %q", f)
		}
		out[k] = iniValue(v)
	}
	return out, nil
}

func iniValue(v string) any {
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		return i
	}
	switch strings.ToLower(v) {
	case "true", "yes":
		return true
	case "false", "no":
		return false
	}
	return v
}

// finalize resolves each host's connection settings from its variables
// (kubeplay names first, then Ansible's).
func (inv *Inventory) finalize() error {
	var errs []string
	for _, name := range inv.order {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, fmt.Sprintf("a host has an empty name (%q)", name))
			continue
		}
		h := inv.hosts[name]
		v := inv.HostVars(name)
		h.Address = firstString(v, name, "address", "ansible_host")
		h.User = firstString(v, "", "user", "ansible_user")
		h.UserGiven = h.User != ""
		if !h.UserGiven {
			h.User = "root"
		}
		if pj, ok := v["proxy_jump"]; ok {
			jumps, err := ParseJumps(fmt.Sprint(pj))
			if err != nil {
				errs = append(errs, fmt.Sprintf("host %s: %v", name, err))
			}
			h.Jumps = jumps
			if jumps == nil {
				h.Jumps = []Jump{} // "none": not even ~/.ssh/config's ProxyJump
			}
		} else if b := inv.Bastion; b != nil && b.Host != "" && b.Host != h.Address && b.Host != name {
			h.Jumps = []Jump{{Address: b.Host, Port: b.Port, User: b.User, IdentityFile: b.IdentityFile}}
		}
		h.IdentityFile = firstString(v, "", "identity_file", "ansible_ssh_private_key_file")
		h.NodeName = firstString(v, name, "node_name")
		h.Local = firstString(v, "", "connection", "ansible_connection") == "local"
		h.Port = 22
		for _, k := range []string{"port", "ansible_port"} {
			if x, ok := v[k]; ok {
				p, err := toInt(x)
				if err != nil || p <= 0 || p > 65535 {
					errs = append(errs, fmt.Sprintf("host %s: %s %v is not a port", name, k, x))
				}
				h.Port, h.PortGiven = p, true
				break
			}
		}
		for _, k := range []string{"become", "ansible_become"} {
			if x, ok := v[k]; ok {
				b, isBool := x.(bool)
				if !isBool {
					errs = append(errs, fmt.Sprintf("host %s: %s must be a bool", name, k))
				}
				h.Become = b
				break
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("inventory: %s", strings.Join(errs, "; "))
	}
	return nil
}

func firstString(v map[string]any, def string, keys ...string) string {
	for _, k := range keys {
		if x, ok := v[k]; ok {
			return fmt.Sprint(x)
		}
	}
	return def
}

func toInt(x any) (int, error) {
	switch n := x.(type) {
	case int64:
		return int(n), nil
	case uint64:
		return int(n), nil
	case int:
		return n, nil
	case string:
		return strconv.Atoi(n)
	}
	return 0, fmt.Errorf("not an integer")
}
