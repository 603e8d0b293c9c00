// Package modules defines the step types of kubeplay: the contract every
// module implements, the narrow Target a module sees, and the registry. Each
// module lives in its own file with its typed parameters.
package modules

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport"
)

// Module is one step type.
type Module interface {
	// Name is the key used in playbooks ("drain", "apt-pin", ...).
	Name() string
	// Doc is a one-paragraph description for `kubeplay doc`.
	Doc() string
	// NewParams returns a fresh typed struct (pointer) the step's YAML is
	// decoded into strictly.
	NewParams() Params
	// Run performs the step. It is only called outside check mode.
	Run(ctx context.Context, t *Target, p Params) (Result, error)
}

// Params are a module's typed parameters.
type Params interface {
	// Validate checks values after decoding, before any host is touched.
	Validate() error
}

// Checker is implemented by modules that can predict their effect without
// changing anything (check mode, idempotence probes).
type Checker interface {
	Check(ctx context.Context, t *Target, p Params) (Result, error)
}

// Undoer is implemented by modules that can undo their own effect when a
// host fails later in the play.
type Undoer interface {
	Undo(ctx context.Context, t *Target, p Params, r Result) error
}

// LocalOnly is implemented by modules that never touch the host: they run in
// the runner and need no connection.
type LocalOnly interface {
	LocalOnly()
}

// Result is what a step reports.
type Result struct {
	Changed bool
	Msg     string
	Stdout  string
	Stderr  string
	RC      int
	Diff    string
	// Data is module-specific output exposed as `NAME.data` after register.
	Data map[string]any
	// Vars are host variables to set for later steps (set-vars).
	Vars map[string]any
	// Warnings are what the operator must know that is no failure (a
	// snapshot of every Secret left in plaintext): the recap lists them.
	Warnings []string
}

// Conn, Cmd and ExecResult are the connection contract, declared in the
// leaf package transport; modules name them through these aliases.
type (
	Conn       = transport.Conn
	Cmd        = transport.Cmd
	ExecResult = transport.ExecResult
)

// Clock is the time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns the current time.
func (RealClock) Now() time.Time { return time.Now() }

// After waits for d.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Prompter asks the operator a yes/no question.
type Prompter interface {
	// Confirm returns the answer; interactive is false when nobody can
	// answer (no TTY, or --yes given).
	Confirm(ctx context.Context, question string) (answer bool, interactive bool, err error)
}

// HostInfo describes the host a step runs for.
type HostInfo struct {
	Name     string
	Address  string
	NodeName string // the host's Kubernetes Node
	Vars     map[string]any
}

// Target is everything a module sees of the world.
type Target struct {
	Host  HostInfo
	Conn  Conn // nil for LocalOnly modules
	Check bool
	Diff  bool
	Log   *zap.Logger
	Clock Clock
	// Eval evaluates an expression against this host's current environment.
	Eval func(e *eval.Expr) (bool, error)
	// Render renders a text with {{ }} expressions (a template file)
	// against this host's current environment. A text with a secret in it
	// renders to a secret.String.
	Render func(text string) (any, error)
	Prompt Prompter
	// Cluster is the cluster's API; its clients are nil without a cluster.
	Cluster
	// Facts are the host's facts gathered so far in this run (read-only).
	Facts map[string]any
	// RunID identifies the run in marks kubeplay leaves on cluster objects.
	RunID string
	// RunStart is when the run started.
	RunStart time.Time
	// Peers reaches the other inventory hosts, for the steps that act on
	// several hosts at once (etcd-member-replace). nil outside a runner.
	Peers Peers
}

// Cluster is how a run reaches its cluster: one value, made once per run
// and shared by the runner and every Target.
type Cluster struct {
	// Kube is the cluster's API client; nil when no kubeconfig was given.
	Kube kubernetes.Interface
	// Dynamic reaches any resource (k8s-apply, k8s-patch, k8s-delete).
	Dynamic dynamic.Interface
	// KubeConfig is how Kube was made (read-only: copy before changing),
	// for steps that address one API server; nil without a cluster.
	KubeConfig *rest.Config
}

// Peers reaches the inventory's other hosts from a step.
type Peers interface {
	// Host describes a host without connecting to it.
	Host(name string) (HostInfo, bool)
	// Conn opens (or reuses) the connection to a host.
	Conn(ctx context.Context, name string) (Conn, error)
}

// Registry maps names to modules.
type Registry struct {
	m map[string]Module
}

// NewRegistry builds a registry; duplicate names panic (a programming error).
func NewRegistry(mods ...Module) *Registry {
	r := &Registry{m: map[string]Module{}}
	for _, m := range mods {
		if _, dup := r.m[m.Name()]; dup {
			panic("duplicate module " + m.Name())
		}
		r.m[m.Name()] = m
	}
	return r
}

// Get looks a module up.
func (r *Registry) Get(name string) (Module, bool) {
	m, ok := r.m[name]
	return m, ok
}

// Names lists the registered modules, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Capabilities names what a module supports beyond Run, for its docs.
func Capabilities(m Module) []string {
	var caps []string
	if _, ok := m.(Checker); ok {
		caps = append(caps, "check mode")
	}
	if _, ok := m.(Undoer); ok {
		caps = append(caps, "built-in rollback")
	}
	if _, ok := m.(LocalOnly); ok {
		caps = append(caps, "runs on the runner (no connection)")
	}
	return caps
}

// ParamDoc describes one parameter for `kubeplay doc`.
type ParamDoc struct {
	Name     string
	Type     string
	Required bool
	Default  string
	Doc      string
}

// DescribeParams documents a module's parameters from its typed struct:
// the `yaml` name, the Go type, and the `doc`, `default` and `required`
// struct tags.
func DescribeParams(m Module) []ParamDoc {
	t := reflect.TypeOf(m.NewParams())
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Map {
		// free names (set-vars): every key is the module's to take
		return []ParamDoc{{Name: "NAME", Type: typeName(t.Elem()), Doc: "any number of names, each with its value"}}
	}
	names := ytree.StructFields(t)
	out := make([]ParamDoc, 0, len(names))
	for name, idx := range names {
		f := t.FieldByIndex(idx)
		out = append(out, ParamDoc{
			Name:     name,
			Type:     typeName(f.Type),
			Required: f.Tag.Get("required") == "true",
			Default:  f.Tag.Get("default"),
			Doc:      f.Tag.Get("doc"),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t == reflect.TypeOf(secret.String{}):
		return "secret"
	case t == reflect.TypeOf((*eval.Expr)(nil)):
		return "expression"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Interface:
		return "any"
	case reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

// required returns an error naming the first empty required string field.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return fmt.Errorf("%s is required", pairs[i])
		}
	}
	return nil
}

// Builtin returns the registry of every module kubeplay ships.
func Builtin() *Registry {
	return NewRegistry(
		Assert{}, Debug{}, SetVars{}, Wait{}, Pause{},
		Command{}, Shell{},
		AptPin{}, SwapRepo{}, RestartService{}, Facts{},
		Cordon{}, Uncordon{}, Drain{}, WaitNodeReady{},
		ClusterInfo{}, Kubeadm{}, EtcdHealth{}, EtcdSnapshot{}, EtcdDefrag{}, EtcdMemberReplace{},
		CertExpiry{}, StaticPodRestart{}, Fetch{},
		CSRApprove{}, ConfigMapEdit{}, WaitPodsReady{}, RestartPods{}, Label{}, Annotate{}, Taint{},
		K8sApply{}, K8sPatch{}, K8sDelete{}, K8sGet{}, K8sRewrite{}, EtcdRestore{}, EtcdEncryptionCheck{}, EncryptionConfig{},
		Reboot{}, Copy{}, Template{}, File{}, Move{}, LineEdit{}, YAMLEdit{}, TOMLEdit{}, EditKubeletConfig{},
	)
}
