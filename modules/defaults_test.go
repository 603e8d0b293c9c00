package modules_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/modules"
)

// minimalParams are, per module, the fewest params Validate accepts (T is
// a runner file, written by the test). A module missing here has no
// required params.
var minimalParams = map[string]string{
	"apt-pin":               `{packages: {kubeadm: "1.37.2-*"}}`,
	"annotate":              `{set: {a: b}}`,
	"assert":                `{that: ["true"]}`,
	"command":               `{argv: ["true"]}`,
	"configmap-edit":        `{name: cfg, key: k, ops: [{op: set, path: a, value: 1}]}`,
	"copy":                  `{dest: /etc/x, content: x}`,
	"edit-kubelet-config":   `{set: {cgroupDriver: systemd}}`,
	"encryption-config":     `{action: reload}`,
	"etcd-encryption-check": `{expect: encrypted}`,
	"etcd-member-replace":   `{member: cp3, new_host: cp4, snapshot: skip}`,
	"etcd-restore":          `{confirm: true, snapshot: /s.db, hosts: [cp1]}`,
	"etcd-snapshot":         `{dir: /var/backups}`,
	"fetch":                 `{src: /etc/x, dest: out}`,
	"file":                  `{path: /etc/x}`,
	"k8s-apply":             `{manifest: "{apiVersion: v1, kind: ConfigMap, metadata: {name: x}}"}`,
	"k8s-delete":            `{api_version: v1, kind: ConfigMap, name: x}`,
	"k8s-get":               `{api_version: v1, kind: ConfigMap}`,
	"k8s-patch":             `{api_version: v1, kind: ConfigMap, name: x, patch: {data: {a: b}}}`,
	"k8s-rewrite":           `{resources: [secrets]}`,
	"kubeadm":               `{action: upgrade-node}`,
	"label":                 `{set: {a: b}}`,
	"line-edit":             `{path: /etc/x, line: a=1}`,
	"move":                  `{src: /etc/a, dest: /etc/b}`,
	"pause":                 `{prompt: go on?}`,
	"restart-pods":          `{selector: app=x}`,
	"restart-service":       `{name: kubelet}`,
	"shell":                 `{cmd: "true"}`,
	"swap-repo":             `{minor: "1.37"}`,
	"taint":                 `{key: k}`,
	"template":              `{src: T, dest: /etc/x}`,
	"wait":                  `{for: 1s}`,
	"wait-pods-ready":       `{selector: app=x}`,
	"yaml-edit":             `{path: /etc/x, ops: [{op: set, path: a, value: 1}]}`,
	"toml-edit":             `{path: /etc/x, table: a, set: {b: 1}}`,
}

// derivedFields are the fields a Validate may set from others, by rule
// (not a default): taint's effect (NoSchedule only with state present),
// configmap-edit's names (from name), and normalised spellings.
var derivedFields = map[string][]string{
	"configmap-edit": {"candidates"},
	"taint":          {"effect"},
}

func decodeParams(t *testing.T, m modules.Module, src string) modules.Params {
	t.Helper()
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		t.Fatalf("%s: %v", m.Name(), err)
	}
	d := &diag.List{}
	n := ytree.FromAST(f.Docs[0].Body, nil, d)
	p := m.NewParams()
	ytree.Decode(n, p, nil, eval.NewCompiler(reflect.TypeOf(struct{}{})), d)
	if err := d.Err(); err != nil {
		t.Fatalf("%s: decode %s: %v", m.Name(), src, err)
	}
	return p
}

// A params default is declared once, in its `default:` tag: the decoder
// applies it, `kubeplay doc` shows it, and neither NewParams nor Validate
// sets one.
func TestParamDefaultsAreDeclaredOnce(t *testing.T) {
	tpl := filepath.Join(t.TempDir(), "t.tpl")
	os.WriteFile(tpl, []byte("x"), 0o644)
	reg := modules.Builtin()
	for _, name := range reg.Names() {
		m, _ := reg.Get(name)
		t.Run(name, func(t *testing.T) {
			fresh := reflect.ValueOf(m.NewParams()).Elem()
			if fresh.Kind() != reflect.Struct {
				return // free names (set-vars)
			}
			if !fresh.IsZero() {
				t.Fatalf("NewParams sets values: %+v (declare them as default: tags)", fresh.Interface())
			}
			fields := ytree.StructFields(fresh.Type())
			docs := map[string]string{}
			for _, d := range modules.DescribeParams(m) {
				docs[d.Name] = d.Default
			}
			// every tag decodes to a value that is not the zero value,
			// and doc shows it
			def := m.NewParams()
			if err := ytree.Defaults(def); err != nil {
				t.Fatal(err)
			}
			dv := reflect.ValueOf(def).Elem()
			for yname, idx := range fields {
				tag, ok := fresh.Type().FieldByIndex(idx).Tag.Lookup("default")
				if !ok {
					continue
				}
				if dv.FieldByIndex(idx).IsZero() {
					t.Errorf("%s: default %q is the zero value", yname, tag)
				}
				if docs[yname] != tag {
					t.Errorf("%s: doc shows default %q, the tag says %q", yname, docs[yname], tag)
				}
			}
			// the decoder applies them: empty params decode to the defaults
			if got := reflect.ValueOf(decodeParams(t, m, "{}")).Elem(); !reflect.DeepEqual(got.Interface(), dv.Interface()) {
				t.Fatalf("{} decodes to %+v, want the defaults %+v", got.Interface(), dv.Interface())
			}
			// Validate fills nothing: a field the user left zero stays
			// zero or is refused, whether it has a default or not
			src := minimalParams[name]
			if src == "" {
				src = "{}"
			}
			src = strings.Replace(src, "src: T", "src: "+tpl, 1)
			if err := decodeParams(t, m, src).Validate(); err != nil {
				t.Fatalf("minimal params %s: %v", src, err)
			}
			for yname, idx := range fields {
				if slices.Contains(derivedFields[name], yname) {
					continue
				}
				p := decodeParams(t, m, src)
				v := reflect.ValueOf(p).Elem().FieldByIndex(idx)
				v.Set(reflect.Zero(v.Type()))
				if err := p.Validate(); err == nil && !v.IsZero() {
					t.Errorf("%s: Validate set %v where the params left it zero (a default belongs in its tag)", yname, v.Interface())
				}
			}
		})
	}
}
