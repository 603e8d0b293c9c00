package playbooks

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
)

// documentedParams are the names a .md's "Params" list documents (each
// item's leading `name`, or `a`, `b`, before its colon), each with the
// text of its item.
// name is one backticked name or value.
var name = regexp.MustCompile("`([A-Za-z0-9_.-]+)`")

func documentedParams(md string) map[string]string {
	_, rest, ok := strings.Cut(md, "- **Params:**")
	if !ok {
		return nil
	}
	if i := strings.Index(rest, "\n- **"); i >= 0 {
		rest = rest[:i]
	}
	item := regexp.MustCompile("(?m)^ +- ((?:`[a-z_]+`(?:, | and | or )?)+)(?: \\([^)]*\\))?:")
	out := map[string]string{}
	idx := item.FindAllStringSubmatchIndex(rest, -1)
	for i, m := range idx {
		end := len(rest)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		for _, n := range name.FindAllStringSubmatch(rest[m[2]:m[3]], -1) {
			out[n[1]] = rest[m[0]:end]
		}
	}
	return out
}

// Each bundled playbook's .md documents exactly the params its YAML
// declares, and every value of a param's enum.
func TestDocsNameTheParamsTheYAMLDeclares(t *testing.T) {
	for _, n := range Names() {
		src, _ := Source(n)
		var pb struct {
			Params map[string]struct {
				Enum []any `yaml:"enum"`
			} `yaml:"params"`
		}
		if err := yaml.Unmarshal(src, &pb); err != nil {
			t.Fatal(err)
		}
		var declared []string
		for p := range pb.Params {
			declared = append(declared, p)
		}
		sort.Strings(declared)
		documented := documentedParams(Doc(n))
		for _, p := range declared {
			text, ok := documented[p]
			if !ok {
				t.Errorf("%s.md does not document param %s", n, p)
				continue
			}
			enum := pb.Params[p].Enum
			for _, v := range enum {
				if !strings.Contains(text, fmt.Sprintf("`%v`", v)) {
					t.Errorf("%s.md: param %s does not name the value `%v` its enum has", n, p, v)
				}
			}
			// the reverse: the values the item's first sentence lists
			if len(enum) > 0 {
				_, first, _ := strings.Cut(text, ":")
				first, _, _ = strings.Cut(first, ". ")
				for _, m := range name.FindAllStringSubmatch(first, -1) {
					if !slices.ContainsFunc(enum, func(v any) bool { return fmt.Sprint(v) == m[1] }) {
						t.Errorf("%s.md: param %s names the value `%s`, which its enum %v lacks", n, p, m[1], enum)
					}
				}
			}
		}
		for p := range documented {
			if !slices.Contains(declared, p) {
				t.Errorf("%s.md documents param %s, which %s.yaml does not declare", n, p, n)
			}
		}
	}
}

// drainOptions are the drain's options every bundled playbook that drains
// takes as params of the same names, types and defaults (issue 19 item 4:
// one pod with an emptyDir volume halted a whole upgrade).
var drainOptions = map[string]struct {
	typ string
	def any
}{
	"delete_emptydir_data": {"bool", false},
	"force":                {"bool", false},
	"grace_period":         {"int", int64(-1)},
	"pod_selector":         {"string", ""},
}

func TestEveryDrainTakesItsOptionsAsParams(t *testing.T) {
	reg := modules.Builtin()
	drains := 0
	for _, n := range Names() {
		src, _ := Source(n)
		pb, err := playbook.Load(n+".yaml", src, reg)
		if err != nil {
			t.Fatal(err)
		}
		var walk func(steps []*playbook.Step) int
		walk = func(steps []*playbook.Step) int {
			found := 0
			for _, s := range steps {
				found += walk(s.Rollback)
				if s.Module.Name() != "drain" {
					continue
				}
				found++
				args, _ := s.Params.Plain(nil)
				m, _ := args.(map[string]any)
				for opt := range drainOptions {
					if want := "{{ params." + opt + " }}"; m[opt] != want {
						t.Errorf("%s: step %q: drain option %s is %v, want %s", n, s.Title(), opt, m[opt], want)
					}
				}
			}
			return found
		}
		found := 0
		for _, p := range pb.Plays {
			for _, sec := range [][]*playbook.Step{p.Steps, p.Rescue, p.Always, p.Handlers} {
				found += walk(sec)
			}
		}
		if found == 0 {
			continue
		}
		drains += found
		for opt, want := range drainOptions {
			i := slices.IndexFunc(pb.Params, func(ps *playbook.ParamSpec) bool { return ps.Name == opt })
			if i < 0 {
				t.Errorf("%s drains but has no param %s", n, opt)
				continue
			}
			if ps := pb.Params[i]; string(ps.Type) != want.typ || fmt.Sprint(ps.Default) != fmt.Sprint(want.def) {
				t.Errorf("%s: param %s is %s default %v, want %s default %v", n, opt, ps.Type, ps.Default, want.typ, want.def)
			}
		}
	}
	if drains < 10 {
		t.Errorf("found %d drain steps in the bundled playbooks, want at least 10", drains)
	}
}
