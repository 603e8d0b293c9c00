package modules

import (
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"testing"
	"time"
)

func encParams(action string) *EncryptionConfigParams {
	p := &EncryptionConfigParams{Action: action, Hosts: []string{"cp1"}}
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// step applies an action and checks the result parses back.
func step(t *testing.T, cur *encConfig, action string, at time.Time) *encConfig {
	t.Helper()
	next, err := encParams(action).transform(cur, &keyGen{now: at})
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	s, err := next.render()
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseEncConfig(s)
	if err != nil {
		t.Fatalf("%s: the written file does not parse back: %v\n%s", action, err, s)
	}
	if !sameConfig(back, next) {
		t.Fatalf("%s: round trip differs", action)
	}
	return next
}

func providers(c *encConfig) string {
	var out []string
	for _, p := range c.Resources[0].Providers {
		kind, keys := p.kind()
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
	if prov, key := c.writeState(); prov != "aescbc" || key != "kubeplay-20261128-060000" {
		t.Fatalf("write state %s %s", prov, key)
	}
}

func TestEncryptionConfigRefusals(t *testing.T) {
	for _, action := range []string{"add-key", "promote-key", "prune-keys"} {
		if _, err := encParams(action).transform(nil, &keyGen{now: time.Now()}); err == nil {
			t.Errorf("%s without a configuration was accepted", action)
		}
	}
	// no configuration is what identity-first wants: nothing is encrypted
	if c, err := encParams("identity-first").transform(nil, &keyGen{now: time.Now()}); c != nil || err != nil {
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
	c, err := parseEncConfig(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encParams("promote-key").transform(c, &keyGen{now: time.Now()}); err == nil {
		t.Error("promote-key picked one of two foreign keys")
	}
	enable := encParams("enable")
	enable.Resources = []string{"configmaps"}
	if _, err := enable.transform(c, &keyGen{now: time.Now()}); err == nil {
		t.Error("enable for a resource the file does not have was accepted")
	}
	for name, bad := range map[string]string{
		"kms":        strings.Replace(foreign, "- identity: {}", "- kms: {name: x, endpoint: unix:///x.sock}", 1),
		"short key":  strings.Replace(foreign, "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDEyMzQ=}\n            - {name: key2", "c2hvcnQ=}\n            - {name: key2", 1),
		"colon name": strings.Replace(foreign, "name: key1", "name: 'a:b'", 1),
		"two kinds":  strings.Replace(foreign, "      - identity: {}", "      - identity: {}\n        aescbc: {keys: []}", 1),
	} {
		if _, err := parseEncConfig(bad); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "c2hvcnQ") {
			t.Errorf("%s: the error quotes a key: %v", name, err)
		}
	}
}

func TestParseConfigHash(t *testing.T) {
	metrics := `# HELP apiserver_encryption_config_controller_last_config_info [ALPHA] Information about the last applied encryption configuration with hash as label, split by apiserver identity.
# TYPE apiserver_encryption_config_controller_last_config_info gauge
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:aaaa",hash="sha256:bbbb"} 1
apiserver_request_total{code="200"} 3
`
	got, err := parseConfigHash(strings.NewReader(metrics))
	if err != nil || got != "sha256:bbbb" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := parseConfigHash(strings.NewReader("apiserver_request_total 1\n")); err == nil {
		t.Fatal("no metric: no error")
	}
}

func TestStoredAs(t *testing.T) {
	p := &EtcdEncryptionCheckParams{Expect: "aescbc", Key: "k2"}
	for v, want := range map[string]string{
		"k8s:enc:aescbc:v1:k2:\x01\x02":  "aescbc:v1:k2",
		"k8s:enc:aescbc:v1:k1:\x01\x02":  "aescbc:v1:k1",
		"k8s:enc:kms:v2:plugin:\x0a\x0b": "kms:v2:plugin",
		"k8s\x00\x0a\x0cv1":              "plaintext",
		`{"kind":"Secret"}`:              "plaintext",
	} {
		if got := storedAs([]byte(v)); got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
	if !p.matches("aescbc:v1:k2") || p.matches("aescbc:v1:k1") || p.matches("plaintext") {
		t.Error("aescbc with key k2")
	}
	enc := &EtcdEncryptionCheckParams{Expect: "encrypted"}
	if !enc.matches("secretbox:v1:x") || enc.matches("plaintext") {
		t.Error("encrypted")
	}
}
