package schema

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/playbooks"
)

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := json.Marshal(Playbook(modules.Builtin()))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(ID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(ID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, src string) error {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v)
}

// Every bundled playbook is valid against the schema.
func TestBundledPlaybooksMatchTheSchema(t *testing.T) {
	s := compile(t)
	for _, n := range playbooks.Names() {
		src, err := playbooks.Source(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, s, string(src)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// What the loader refuses, the schema refuses too, where a schema can say
// it: so an editor marks it before a run does.
func TestTheSchemaRefusesBadPlaybooks(t *testing.T) {
	s := compile(t)
	head := "apiVersion: kubeplay/v1\nkind: Playbook\nname: p\n"
	bad := map[string]string{
		"unknown top key":         head + "plays: [{hosts: all, steps: [{debug: {msg: x}}]}]\nhandlers: []\n",
		"another apiVersion":      strings.Replace(head, "kubeplay/v1", "kubeplay/v2", 1) + "plays: [{hosts: all, steps: [{debug: {msg: x}}]}]\n",
		"a play without hosts":    head + "plays: [{steps: [{debug: {msg: x}}]}]\n",
		"an unknown play key":     head + "plays: [{hosts: all, strategy: free, steps: [{debug: {msg: x}}]}]\n",
		"two modules in a step":   head + "plays: [{hosts: all, steps: [{debug: {msg: x}, command: {argv: [true]}}]}]\n",
		"no module in a step":     head + "plays: [{hosts: all, steps: [{name: nothing}]}]\n",
		"an unknown module":       head + "plays: [{hosts: all, steps: [{fly: {}}]}]\n",
		"an unknown module param": head + "plays: [{hosts: all, steps: [{drain: {timeout: 5m, force_it: true}}]}]\n",
		"a duration as a number":  head + "plays: [{hosts: all, steps: [{drain: {timeout: 300}}]}]\n",
		"a required param absent": head + "plays: [{hosts: all, steps: [{command: {chdir: /tmp}}]}]\n",
		"a list given a mapping":  head + "plays: [{hosts: all, steps: [{command: {argv: {a: b}}}]}]\n",
		"an unknown param type":   head + "params: {v: {type: semver}}\nplays: [{hosts: all, steps: [{debug: {msg: x}}]}]\n",
		"a bad serial":            head + "plays: [{hosts: all, serial: 0, steps: [{debug: {msg: x}}]}]\n",
		"an unknown common key":   head + "plays: [{hosts: all, steps: [{debug: {msg: x}, loop_forever: true}]}]\n",
	}
	for name, src := range bad {
		// the loader refuses each of them too: the fixture is really bad
		if _, err := playbook.Load("bad.yaml", []byte(src), modules.Builtin()); err == nil {
			t.Errorf("%s: the loader accepts it; not a bad fixture", name)
		}
		if err := validate(t, s, src); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
	// templates stand for any type
	good := head + "params: {t: {type: duration, default: 5m}}\nplays: [{hosts: 'role:workers', serial: '{{ params.n }}', steps: [{drain: {timeout: '{{ params.t }}', force: '{{ true }}'}, when: true, retries: 2, delay: 3s}]}]\n"
	if err := validate(t, s, good); err != nil {
		t.Errorf("templated values: %v", err)
	}
}
