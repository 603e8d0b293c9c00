// Package playbook loads and validates kubeplay playbooks: strict decoding
// with located errors, typed params, and expressions compiled against the
// typed environment, all before any host is touched.
package playbook

import (
	"reflect"
	"regexp"
	"time"

	"github.com/goccy/go-yaml/token"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"github.com/kubeplay/kubeplay/modules"
)

// APIVersion is the only playbook apiVersion understood.
const APIVersion = "kubeplay/v1"

// ParamType is the declared type of a playbook parameter.
type ParamType string

// Parameter types.
const (
	TString   ParamType = "string"
	TInt      ParamType = "int"
	TBool     ParamType = "bool"
	TDuration ParamType = "duration"
	TList     ParamType = "list"
	TMap      ParamType = "map"
	TVersion  ParamType = "version"
)

// ParamSpec declares one parameter.
type ParamSpec struct {
	Name     string
	Type     ParamType
	Required bool
	Default  any // already converted to the Go type of Type
	Pattern  *regexp.Regexp
	Enum     []any
	Doc      string
	Secret   bool
	Tok      *token.Token
}

// Var is a playbook-level variable: a value, usually a template.
type Var struct {
	Name string
	Node *ytree.Node
}

// Playbook is a loaded, validated playbook.
type Playbook struct {
	File        string
	Name        string
	Description string
	Params      []*ParamSpec
	Vars        []*Var
	Plays       []*Play

	// ParamsType and VarsType are the struct types expressions see as
	// `params` and `vars`; EnvType is the whole environment.
	ParamsType reflect.Type
	VarsType   reflect.Type
	EnvType    reflect.Type
	Registered []string
}

// Serial is one batch size: N hosts or N percent.
type Serial struct {
	N       int
	Percent bool
}

// Play runs steps on the hosts matching a pattern.
type Play struct {
	Name      string
	Hosts     string
	HostsTmpl *eval.Template // hosts given as a template of params
	Serial    []Serial
	// SerialTmpl is a serial given as a template of params (e.g.
	// '{{ params.batch }}'), rendered when the play starts.
	SerialTmpl *eval.Template
	MaxFailPct int
	Steps      []*Step
	Rescue     []*Step
	Always     []*Step
	Handlers   []*Step
	Tok        *token.Token
}

// Step is one module invocation with its common keys.
type Step struct {
	ID           string // stable identifier: play index, section and position ("p0.s3", "p1.h0", "p0.s2.rb0")
	Name         string
	Module       modules.Module
	Params       *ytree.Node
	When         *eval.Expr
	Until        *eval.Expr
	ChangedWhen  *eval.Expr
	FailedWhen   *eval.Expr
	Register     string
	Retries      int
	Delay        time.Duration
	Backoff      float64
	Timeout      time.Duration
	Rollback     []*Step
	IgnoreErrors bool
	Tags         []string
	RunOnce      bool
	DelegateTo   string
	NoLog        bool
	Notify       []string
	// CheckMode false runs the step for real even under --check (read-only
	// probes whose output later steps need); true always predicts and
	// changes nothing (a preflight: would this edit be accepted on every
	// host?); nil follows the run.
	CheckMode *bool
	Tok       *token.Token
	// File is the playbook file the step was written in, for run-time
	// diagnostics; Dir is its absolute directory, which relative runner
	// paths written in the step resolve against.
	File string
	Dir  string
}

// Title is the step's display name.
func (s *Step) Title() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Module.Name()
}
