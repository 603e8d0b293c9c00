package encconfig

import (
	"strings"
	"testing"
	"time"
)

func spec(action string) Spec {
	return Spec{Action: action, Provider: "aescbc", Resources: []string{"secrets"}}
}

// step applies an action and checks the result parses back.
func step(t *testing.T, cur *Config, action string, at time.Time) *Config {
	t.Helper()
	next, err := Transform(cur, spec(action), &KeyGen{Now: at})
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	s, err := next.Render()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(s)
	if err != nil {
		t.Fatalf("%s: the written file does not parse back: %v\n%s", action, err, s)
	}
	if !Same(back, next) {
		t.Fatalf("%s: round trip differs", action)
	}
	return next
}

func providers(c *Config) string {
	var out []string
	for _, p := range c.Resources[0].Providers {
		kind, keys := p.Kind()
		if keys == nil {
			out = append(out, kind)
			continue
		}
		var names []string
		for _, k := range keys.Keys {
			names = append(names, k.Name)
		}
		out = append(out, kind+"["+strings.Join(names, ",")+"]")
	}
	return strings.Join(out, " ")
}

func TestEncryptionConfigLifecycle(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	t1 := t0.Add(24 * time.Hour)
	// prepare: the key reads, new writes stay plaintext (an API server
	// without the flag yet reads everything); enable puts the key first
	c := step(t, nil, "prepare", t0)
	if got, want := providers(c), "identity aescbc[kubeplay-20261127-060000]"; got != want {
		t.Fatalf("prepare: %s, want %s", got, want)
	}
	if again := step(t, c, "prepare", t1); again != c {
		t.Fatalf("prepare twice changed: %s", providers(again))
	}
	c = step(t, c, "enable", t1)
	if got, want := providers(c), "aescbc[kubeplay-20261127-060000] identity"; got != want {
		t.Fatalf("enable: %s, want %s", got, want)
	}
	if again := step(t, c, "enable", t1); again != c {
		t.Fatalf("enable twice changed: %s", providers(again))
	}
	// rotation: the docs' order, each phase idempotent
	c = step(t, c, "add-key", t1)
	if got, want := providers(c), "aescbc[kubeplay-20261127-060000,kubeplay-20261128-060000] identity"; got != want {
		t.Fatalf("add-key: %s, want %s", got, want)
	}
	if again := step(t, c, "add-key", t1.Add(time.Hour)); again != c {
		t.Fatalf("add-key during a rotation added another key: %s", providers(again))
	}
	c = step(t, c, "promote-key", t1)
	if got, want := providers(c), "aescbc[kubeplay-20261128-060000,kubeplay-20261127-060000] identity"; got != want {
		t.Fatalf("promote-key: %s, want %s", got, want)
	}
	if again := step(t, c, "promote-key", t1); again != c {
		t.Fatalf("promote-key twice changed: %s", providers(again))
	}
	c = step(t, c, "prune-keys", t1)
	if got, want := providers(c), "aescbc[kubeplay-20261128-060000] identity"; got != want {
		t.Fatalf("prune-keys: %s, want %s", got, want)
	}
	// disabling keeps the key for reading; enabling again brings it back first
	c = step(t, c, "identity-first", t1)
	if got, want := providers(c), "identity aescbc[kubeplay-20261128-060000]"; got != want {
		t.Fatalf("identity-first: %s, want %s", got, want)
	}
	if again := step(t, c, "identity-first", t1); again != c {
		t.Fatal("identity-first twice changed")
	}
	c = step(t, c, "enable", t1.Add(time.Hour))
	if got, want := providers(c), "aescbc[kubeplay-20261128-060000] identity"; got != want {
		t.Fatalf("enable after identity-first: %s, want %s", got, want)
	}
	if prov, key := c.WriteState(); prov != "aescbc" || key != "kubeplay-20261128-060000" {
		t.Fatalf("write state %s %s", prov, key)
	}
}

func TestEncryptionConfigRefusals(t *testing.T) {
	for _, action := range []string{"add-key", "promote-key", "prune-keys"} {
		if _, err := Transform(nil, spec(action), &KeyGen{Now: time.Now()}); err == nil {
			t.Errorf("%s without a configuration was accepted", action)
		}
	}
	// no configuration is what identity-first wants: nothing is encrypted
	if c, err := Transform(nil, spec("identity-first"), &KeyGen{Now: time.Now()}); c != nil || err != nil {
		t.Errorf("identity-first without a configuration: %v, %v", c, err)
	}
	// a key kubeplay did not add is not promoted: which one is new is unknown
	foreign := `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - {name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDEyMzQ=}
            - {name: key2, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDEyMzQ=}
      - identity: {}
`
	c, err := Parse(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Transform(c, spec("promote-key"), &KeyGen{Now: time.Now()}); err == nil {
		t.Error("promote-key picked one of two foreign keys")
	}
	enable := spec("enable")
	enable.Resources = []string{"configmaps"}
	if _, err := Transform(c, enable, &KeyGen{Now: time.Now()}); err == nil {
		t.Error("enable for a resource the file does not have was accepted")
	}
	for name, bad := range map[string]string{
		"kms":        strings.Replace(foreign, "- identity: {}", "- kms: {name: x, endpoint: unix:///x.sock}", 1),
		"short key":  strings.Replace(foreign, "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDEyMzQ=}\n            - {name: key2", "c2hvcnQ=}\n            - {name: key2", 1),
		"colon name": strings.Replace(foreign, "name: key1", "name: 'a:b'", 1),
		"two kinds":  strings.Replace(foreign, "      - identity: {}", "      - identity: {}\n        aescbc: {keys: []}", 1),
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "c2hvcnQ") {
			t.Errorf("%s: the error quotes a key: %v", name, err)
		}
	}
}
