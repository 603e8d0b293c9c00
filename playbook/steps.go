package playbook

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/diag"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/modules"
)

var playKeys = []string{"name", "hosts", "serial", "max_fail_percentage", "steps", "rescue", "always", "handlers"}

func (l *loader) play(i int, n *ytree.Node) *Play {
	p := &Play{Tok: n.Tok}
	if n.Kind != ytree.Map {
		l.d.At(n.Tok, "play %d: expected a mapping", i)
		return p
	}
	l.checkKeys(n, playKeys, fmt.Sprintf("play %d", i))
	p.Name = l.str(n.Get("name"), "name")
	if p.Name == "" {
		p.Name = fmt.Sprintf("play %d", i)
	}
	p.Hosts = l.str(n.Get("hosts"), "hosts")
	if p.Hosts == "" {
		l.d.At(n.Tok, "play %q: hosts is required", p.Name)
	} else if eval.HasTemplate(p.Hosts) {
		t, err := l.c.CompileTemplate(p.Hosts)
		if err != nil {
			l.d.At(n.Get("hosts").Tok, "hosts: %v", err)
		}
		p.HostsTmpl = t
	}
	if sn := n.Get("serial"); sn != nil && sn.Kind == ytree.Scalar && eval.HasTemplate(sn.String()) {
		t, err := l.c.CompileTemplate(sn.String())
		if err != nil {
			l.d.At(sn.Tok, "serial: %v", err)
		}
		p.SerialTmpl = t
	} else {
		p.Serial = l.serial(sn)
	}
	if mf := n.Get("max_fail_percentage"); mf != nil {
		var v int
		ytree.Decode(mf, &v, nil, nil, l.d)
		if v < 0 || v > 100 {
			l.d.At(mf.Tok, "max_fail_percentage must be between 0 and 100")
		}
		p.MaxFailPct = v
	}
	prefix := fmt.Sprintf("p%d.", i)
	p.Handlers = l.steps(n.Get("handlers"), prefix+"h", true)
	p.Steps = l.steps(n.Get("steps"), prefix+"s", false)
	if st := n.Get("steps"); st == nil || len(st.Items) == 0 {
		l.d.At(n.Tok, "play %q: at least one step is required", p.Name)
	}
	p.Rescue = l.steps(n.Get("rescue"), prefix+"r", false)
	p.Always = l.steps(n.Get("always"), prefix+"a", false)

	handlers := map[string]bool{}
	for _, h := range p.Handlers {
		if handlers[h.Name] {
			l.d.At(h.Tok, "handler %q is defined twice", h.Name)
		}
		handlers[h.Name] = true
	}
	for _, list := range [][]*Step{p.Steps, p.Rescue, p.Always} {
		for _, s := range list {
			for _, nt := range s.Notify {
				if !handlers[nt] {
					l.d.At(s.Tok, "notify: no handler named %q in play %q", nt, p.Name)
				}
			}
		}
	}
	return p
}

func (l *loader) serial(n *ytree.Node) []Serial {
	if n == nil || n.Kind == ytree.Null {
		return nil
	}
	items := []*ytree.Node{n}
	if n.Kind == ytree.Seq {
		items = n.Items
	}
	var out []Serial
	for _, it := range items {
		s, err := parseSerial(it)
		if err != nil {
			l.d.At(it.Tok, "serial: %v", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

// RenderSerial renders a templated serial (one N or "N%").
func (p *Play) RenderSerial(env any) ([]Serial, error) {
	v, err := p.SerialTmpl.Render(env)
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	n := &ytree.Node{Kind: ytree.Scalar, Scalar: fmt.Sprint(v)}
	if i, ok := v.(int); ok {
		n.Scalar = int64(i)
	}
	s, err := parseSerial(n)
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return []Serial{s}, nil
}

func parseSerial(n *ytree.Node) (Serial, error) {
	if n.Kind == ytree.Scalar {
		switch v := n.Scalar.(type) {
		case int64:
			if v > 0 {
				return Serial{N: int(v)}, nil
			}
		case uint64:
			if v > 0 {
				return Serial{N: int(v)}, nil
			}
		case string:
			var x int
			pct := strings.HasSuffix(v, "%")
			if _, err := fmt.Sscanf(strings.TrimSuffix(v, "%"), "%d", &x); err == nil && x > 0 && fmt.Sprint(x) == strings.TrimSuffix(v, "%") {
				if pct && x > 100 {
					break
				}
				return Serial{N: x, Percent: pct}, nil
			}
		}
	}
	return Serial{}, fmt.Errorf("expected a positive integer or \"N%%\", got %s", n.String())
}

// commonYAML holds the keys every step may have besides its module.
type commonYAML struct {
	Name         string        `yaml:"name"`
	When         *eval.Expr    `yaml:"when"`
	Until        *eval.Expr    `yaml:"until"`
	ChangedWhen  *eval.Expr    `yaml:"changed_when"`
	FailedWhen   *eval.Expr    `yaml:"failed_when"`
	Register     string        `yaml:"register"`
	Retries      int           `yaml:"retries"`
	Delay        time.Duration `yaml:"delay"`
	Backoff      float64       `yaml:"backoff"`
	Timeout      time.Duration `yaml:"timeout"`
	IgnoreErrors bool          `yaml:"ignore_errors"`
	Tags         []string      `yaml:"tags"`
	RunOnce      bool          `yaml:"run_once"`
	DelegateTo   string        `yaml:"delegate_to"`
	NoLog        bool          `yaml:"no_log"`
	Notify       []string      `yaml:"notify"`
	CheckMode    *bool         `yaml:"check_mode"`
}

// commonKeys are the step keys that are not modules.
var commonKeys = func() map[string]bool {
	m := map[string]bool{"rollback": true}
	for k := range ytree.StructFields(reflect.TypeOf(commonYAML{})) {
		m[k] = true
	}
	return m
}()

func (l *loader) steps(n *ytree.Node, prefix string, handlers bool) []*Step {
	if n == nil || n.Kind == ytree.Null {
		return nil
	}
	if n.Kind != ytree.Seq {
		l.d.At(n.Tok, "expected a list of steps")
		return nil
	}
	out := make([]*Step, 0, len(n.Items))
	for i, it := range n.Items {
		if s := l.step(it, fmt.Sprintf("%s%d", prefix, i), handlers); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) step(n *ytree.Node, id string, handler bool) *Step {
	if n.Kind != ytree.Map {
		l.d.At(n.Tok, "a step must be a mapping with one module key")
		return nil
	}
	common := &ytree.Node{Kind: ytree.Map, Tok: n.Tok}
	var modKeys []ytree.Key
	var rollback *ytree.Node
	for _, kv := range n.Keys {
		switch {
		case kv.Name == "rollback":
			rollback = kv.Val
		case commonKeys[kv.Name]:
			common.Keys = append(common.Keys, kv)
		default:
			modKeys = append(modKeys, kv)
		}
	}
	var c commonYAML
	ytree.Decode(common, &c, nil, l.c, l.d)
	s := &Step{
		ID: id, Name: c.Name, When: c.When, Until: c.Until, ChangedWhen: c.ChangedWhen, FailedWhen: c.FailedWhen,
		Register: c.Register, Retries: c.Retries, Delay: c.Delay, Backoff: c.Backoff, Timeout: c.Timeout,
		IgnoreErrors: c.IgnoreErrors, Tags: c.Tags, RunOnce: c.RunOnce, DelegateTo: c.DelegateTo, NoLog: c.NoLog,
		Notify: c.Notify, CheckMode: c.CheckMode, Tok: n.Tok, File: l.d.File, Dir: l.dir,
	}
	switch {
	case s.Retries < 0:
		l.d.At(n.Tok, "retries must not be negative")
	case s.Backoff != 0 && s.Backoff < 1:
		l.d.At(n.Tok, "backoff is a delay multiplier and must be at least 1")
	case s.Delay < 0 || s.Timeout < 0:
		l.d.At(n.Tok, "delay and timeout must not be negative")
	case s.DelegateTo != "" && s.DelegateTo != "localhost":
		l.d.At(n.Tok, "delegate_to: only \"localhost\" (the runner machine) is supported, got %q", s.DelegateTo)
	case s.Until != nil && s.Retries == 0:
		l.d.At(n.Tok, "until needs retries (how many more attempts to make)")
	}
	if handler && s.Name == "" {
		l.d.At(n.Tok, "a handler needs a name (steps notify it by name)")
	}
	if handler && len(s.Notify) > 0 {
		l.d.At(n.Tok, "handlers cannot notify other handlers")
	}
	switch len(modKeys) {
	case 0:
		l.d.At(n.Tok, "step has no module (known modules: %s)", strings.Join(l.reg.Names(), ", "))
		return nil
	case 1:
	default:
		names := make([]string, 0, len(modKeys))
		for _, k := range modKeys {
			names = append(names, k.Name)
		}
		sort.Strings(names)
		l.d.At(modKeys[1].Tok, "step has more than one module or unknown keys: %s", strings.Join(names, ", "))
		return nil
	}
	mk := modKeys[0]
	mod, ok := l.reg.Get(mk.Name)
	if !ok {
		l.d.At(mk.Tok, "unknown module %q (known modules: %s)", mk.Name, strings.Join(l.reg.Names(), ", "))
		return nil
	}
	s.Module = mod
	s.Params = mk.Val
	if s.Params == nil || s.Params.Kind == ytree.Null {
		s.Params = &ytree.Node{Kind: ytree.Map, Tok: mk.Tok}
	}
	ytree.CompileTemplates(s.Params, l.c.CompileTemplate, l.d)
	before := l.d.Len()
	p := mod.NewParams()
	ytree.DecodeIn(s.Params, p, nil, l.c, l.d, s.Dir)
	if l.d.Len() == before && !ytree.HasTemplates(s.Params) {
		if err := p.Validate(); err != nil {
			l.d.At(mk.Tok, "%s: %v", mk.Name, err)
		}
	}
	if rollback != nil {
		if handler {
			l.d.At(n.Tok, "handlers cannot have rollback steps")
		}
		s.Rollback = l.steps(rollback, id+".rb", false)
	}
	return s
}

// DecodeParams renders a step's params for one host's environment and
// decodes them strictly into the module's typed struct, then validates.
func (s *Step) DecodeParams(env any) (modules.Params, error) {
	d := &diag.List{File: s.File}
	p := s.Module.NewParams()
	ytree.DecodeIn(s.Params, p, env, nil, d, s.Dir)
	if err := d.Err(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Module.Name(), err)
	}
	return p, nil
}
