// Package encconfig models the kube-apiserver's EncryptionConfiguration
// (apiserver.config.k8s.io/v1) as kubeplay edits it, and the file actions
// of encryption-config, one function per action. Keys are secrets: no
// message here quotes one.
package encconfig

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is the EncryptionConfiguration (apiserver.config.k8s.io/v1) as far
// as kubeplay changes it. A file with any other field (kms providers
// included) is refused rather than rewritten without it.
type Config struct {
	APIVersion string      `yaml:"apiVersion"`
	Kind       string      `yaml:"kind"`
	Resources  []Resources `yaml:"resources"`
}

// Resources is one entry: the resources it covers, and its providers in
// order (the first writes, all read).
type Resources struct {
	Resources []string   `yaml:"resources,flow"`
	Providers []Provider `yaml:"providers"`
}

// Provider is one provider entry: exactly one field is set.
type Provider struct {
	AESCBC    *Keys     `yaml:"aescbc,omitempty"`
	AESGCM    *Keys     `yaml:"aesgcm,omitempty"`
	Secretbox *Keys     `yaml:"secretbox,omitempty"`
	Identity  *struct{} `yaml:"identity,omitempty"`
}

// Keys are a keyed provider's keys, the first one writing.
type Keys struct {
	Keys []Key `yaml:"keys"`
}

// Key is one named key; Secret is its base64 secret.
type Key struct {
	Name   string `yaml:"name"`
	Secret string `yaml:"secret"`
}

// Kind names the provider; keys is nil for identity.
func (p *Provider) Kind() (string, *Keys) {
	switch {
	case p.AESCBC != nil:
		return "aescbc", p.AESCBC
	case p.AESGCM != nil:
		return "aesgcm", p.AESGCM
	case p.Secretbox != nil:
		return "secretbox", p.Secretbox
	}
	return "identity", nil
}

// NewProvider is a keyed provider of kind (aescbc, aesgcm or secretbox).
func NewProvider(kind string, keys []Key) Provider {
	k := &Keys{Keys: keys}
	switch kind {
	case "aesgcm":
		return Provider{AESGCM: k}
	case "secretbox":
		return Provider{Secretbox: k}
	}
	return Provider{AESCBC: k}
}

// Parse reads a file's content; "" is no configuration (nil).
// Messages never quote the content: it holds keys.
func Parse(content string) (*Config, error) {
	if strings.TrimSpace(content) == "" {
		return nil, nil
	}
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(content), &c, yaml.Strict()); err != nil {
		return nil, errors.New("not an EncryptionConfiguration kubeplay can edit (a field it does not know, kms providers included)")
	}
	if c.Kind != "EncryptionConfiguration" || c.APIVersion != "apiserver.config.k8s.io/v1" {
		return nil, fmt.Errorf("kind %q, apiVersion %q: want EncryptionConfiguration, apiserver.config.k8s.io/v1", c.Kind, c.APIVersion)
	}
	if len(c.Resources) == 0 {
		return nil, errors.New("no resources")
	}
	for i, r := range c.Resources {
		if len(r.Resources) == 0 || len(r.Providers) == 0 {
			return nil, fmt.Errorf("resources[%d]: needs resources and providers", i)
		}
		for j := range r.Providers {
			n := 0
			for _, set := range []bool{r.Providers[j].AESCBC != nil, r.Providers[j].AESGCM != nil, r.Providers[j].Secretbox != nil, r.Providers[j].Identity != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return nil, fmt.Errorf("resources[%d].providers[%d]: one provider per entry", i, j)
			}
			kind, keys := r.Providers[j].Kind()
			if keys == nil {
				continue
			}
			if len(keys.Keys) == 0 {
				return nil, fmt.Errorf("resources[%d] %s: no keys", i, kind)
			}
			for _, k := range keys.Keys {
				if err := checkKey(kind, k); err != nil {
					return nil, fmt.Errorf("resources[%d] %s: %w", i, kind, err)
				}
			}
		}
	}
	return &c, nil
}

// checkKey applies the API server's rules on a key: a name without a colon
// (it becomes part of each stored value's prefix) and a base64 secret of a
// length the cipher takes. The secret itself is never quoted.
func checkKey(kind string, k Key) error {
	if k.Name == "" || strings.Contains(k.Name, ":") {
		return fmt.Errorf("key name %q: not empty, no colon", k.Name)
	}
	b, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return fmt.Errorf("key %s: the secret is not base64", k.Name)
	}
	ok := len(b) == 32
	if kind == "aesgcm" {
		ok = len(b) == 16 || len(b) == 24 || len(b) == 32
	}
	if !ok {
		return fmt.Errorf("key %s: %d bytes is not a %s key length", k.Name, len(b), kind)
	}
	return nil
}

// Render is the file's content.
func (c *Config) Render() (string, error) {
	b, err := yaml.MarshalWithOptions(c, yaml.IndentSequence(true))
	if err != nil {
		return "", err
	}
	return "# written by kubeplay encryption-config: identical on every control plane\n" + string(b), nil
}

// WriteState is what new writes use: the first provider of the first
// entry, and its first key.
func (c *Config) WriteState() (provider, key string) {
	if c == nil {
		return "identity", ""
	}
	kind, keys := c.Resources[0].Providers[0].Kind()
	if keys != nil {
		return kind, keys.Keys[0].Name
	}
	return kind, ""
}

// KeyNames lists the names of every key, first seen first.
func (c *Config) KeyNames() []string {
	var out []string
	if c == nil {
		return nil
	}
	for _, r := range c.Resources {
		for i := range r.Providers {
			if _, keys := r.Providers[i].Kind(); keys != nil {
				for _, k := range keys.Keys {
					if !slices.Contains(out, k.Name) {
						out = append(out, k.Name)
					}
				}
			}
		}
	}
	return out
}

// KeyGen makes a fresh key; one per action, shared by every entry.
type KeyGen struct {
	Now time.Time
	key *Key
}

// Get returns the action's key, generating it the first time.
func (g *KeyGen) Get() (Key, error) {
	if g.key == nil {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return Key{}, fmt.Errorf("generate a key: %w", err)
		}
		g.key = &Key{Name: "kubeplay-" + g.Now.UTC().Format("20060102-150405"), Secret: base64.StdEncoding.EncodeToString(b)}
	}
	return *g.key, nil
}

// firstKeys is the key list of the first keyed provider, the one rotation
// acts on; nil when the entry has none.
func firstKeys(provs []Provider) *Keys {
	for i := range provs {
		if _, keys := provs[i].Kind(); keys != nil {
			return keys
		}
	}
	return nil
}

func (c *Config) clone() *Config {
	n := &Config{APIVersion: c.APIVersion, Kind: c.Kind}
	for _, r := range c.Resources {
		nr := Resources{Resources: slices.Clone(r.Resources)}
		for _, pr := range r.Providers {
			np := pr
			if kind, keys := pr.Kind(); keys != nil {
				np = NewProvider(kind, slices.Clone(keys.Keys))
			}
			nr.Providers = append(nr.Providers, np)
		}
		n.Resources = append(n.Resources, nr)
	}
	return n
}

// Same compares two configurations by what the API server reads.
func Same(a, b *Config) bool {
	x, errA := a.Render()
	y, errB := b.Render()
	return errA == nil && errB == nil && x == y
}
