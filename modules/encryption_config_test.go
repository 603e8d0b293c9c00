package modules

import (
	"strings"
	"testing"
)

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
