package encconfig

import (
	"fmt"
	"slices"
	"strings"
)

// Spec is what a file action needs: its name and, for prepare and enable,
// the provider and resources to encrypt.
type Spec struct {
	Action    string
	Provider  string
	Resources []string
}

// actions change a copy of the current configuration, saying whether they
// changed it. remove is no transform (the file goes), nor is reload.
var actions = map[string]func(next *Config, s Spec, gen *KeyGen) (bool, error){
	"prepare":        prepare,
	"enable":         enable,
	"add-key":        addKey,
	"promote-key":    promoteKey,
	"prune-keys":     pruneKeys,
	"identity-first": identityFirst,
}

// Transform computes the action's configuration from the current one (nil
// for no file). It returns cur itself when cur is already in the action's
// state.
func Transform(cur *Config, s Spec, gen *KeyGen) (*Config, error) {
	if cur == nil {
		return fresh(s, gen)
	}
	act, ok := actions[s.Action]
	if !ok {
		return cur, nil
	}
	next := cur.clone()
	changed, err := act(next, s, gen)
	if err != nil || !changed {
		return cur, err
	}
	return next, nil
}

// fresh is the configuration of prepare and enable where there is none:
// the new key and identity, identity first for prepare (it reads, new
// writes stay plaintext). identity-first wants no file.
func fresh(s Spec, gen *KeyGen) (*Config, error) {
	switch s.Action {
	case "identity-first":
		// no configuration: nothing is encrypted
		return nil, nil
	case "prepare", "enable":
	default:
		return nil, fmt.Errorf("%s: there is no encryption configuration (enable first)", s.Action)
	}
	k, err := gen.Get()
	if err != nil {
		return nil, err
	}
	provs := []Provider{NewProvider(s.Provider, []Key{k}), {Identity: &struct{}{}}}
	if s.Action == "prepare" {
		provs[0], provs[1] = provs[1], provs[0]
	}
	return &Config{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration", Resources: []Resources{{
		Resources: slices.Clone(s.Resources), Providers: provs,
	}}}, nil
}

// entry is the index of the entry that names resource res.
func entry(c *Config, action, res string) (int, error) {
	i := slices.IndexFunc(c.Resources, func(r Resources) bool { return slices.Contains(r.Resources, res) })
	if i < 0 {
		return 0, fmt.Errorf("%s: %s is not in the configuration that is there (add it by hand, or disable and enable again)", action, res)
	}
	return i, nil
}

// prepare: a configuration that is there stays as it is, unless a
// resource has no key to read with.
func prepare(next *Config, s Spec, gen *KeyGen) (bool, error) {
	changed := false
	for _, res := range s.Resources {
		i, err := entry(next, s.Action, res)
		if err != nil {
			return false, err
		}
		if firstKeys(next.Resources[i].Providers) != nil {
			continue
		}
		k, err := gen.Get()
		if err != nil {
			return false, err
		}
		next.Resources[i].Providers = append(next.Resources[i].Providers, NewProvider(s.Provider, []Key{k}))
		changed = true
	}
	return changed, nil
}

// enable puts a keyed provider first for each resource: the one already
// there (after identity-first), else a new key.
func enable(next *Config, s Spec, gen *KeyGen) (bool, error) {
	changed := false
	for _, res := range s.Resources {
		i, err := entry(next, s.Action, res)
		if err != nil {
			return false, err
		}
		provs := next.Resources[i].Providers
		if _, keys := provs[0].Kind(); keys != nil {
			continue
		}
		changed = true
		if j := slices.IndexFunc(provs, func(pr Provider) bool { _, k := pr.Kind(); return k != nil }); j > 0 {
			next.Resources[i].Providers = append([]Provider{provs[j]}, slices.Delete(slices.Clone(provs), j, j+1)...)
			continue
		}
		k, err := gen.Get()
		if err != nil {
			return false, err
		}
		next.Resources[i].Providers = append([]Provider{NewProvider(s.Provider, []Key{k})}, provs...)
	}
	return changed, nil
}

// addKey adds a new key as the first keyed provider's last key (read, not
// yet written). A provider with two keys is a rotation under way: it is
// finished, not started again.
func addKey(next *Config, _ Spec, gen *KeyGen) (bool, error) {
	changed := false
	for i := range next.Resources {
		keys := firstKeys(next.Resources[i].Providers)
		if keys == nil || len(keys.Keys) > 1 {
			continue
		}
		k, err := gen.Get()
		if err != nil {
			return false, err
		}
		keys.Keys = append(keys.Keys, k)
		changed = true
	}
	return changed, nil
}

// promoteKey puts the newest key kubeplay added first: new writes use it.
func promoteKey(next *Config, _ Spec, _ *KeyGen) (bool, error) {
	changed := false
	for i := range next.Resources {
		keys := firstKeys(next.Resources[i].Providers)
		if keys == nil || len(keys.Keys) < 2 {
			continue
		}
		newest := -1
		for j, k := range keys.Keys {
			if strings.HasPrefix(k.Name, "kubeplay-") && (newest < 0 || k.Name > keys.Keys[newest].Name) {
				newest = j
			}
		}
		if newest < 0 {
			return false, fmt.Errorf("promote-key: resources[%d] has no key kubeplay added (add-key first)", i)
		}
		if newest > 0 {
			k := keys.Keys[newest]
			keys.Keys = append([]Key{k}, slices.Delete(keys.Keys, newest, newest+1)...)
			changed = true
		}
	}
	return changed, nil
}

// pruneKeys keeps only each provider's first key.
func pruneKeys(next *Config, _ Spec, _ *KeyGen) (bool, error) {
	changed := false
	for i := range next.Resources {
		for j := range next.Resources[i].Providers {
			if _, keys := next.Resources[i].Providers[j].Kind(); keys != nil && len(keys.Keys) > 1 {
				keys.Keys = keys.Keys[:1]
				changed = true
			}
		}
	}
	return changed, nil
}

// identityFirst makes new writes plaintext again; the keys stay for
// reading.
func identityFirst(next *Config, _ Spec, _ *KeyGen) (bool, error) {
	changed := false
	for i := range next.Resources {
		provs := next.Resources[i].Providers
		j := slices.IndexFunc(provs, func(pr Provider) bool { return pr.Identity != nil })
		switch {
		case j == 0:
			continue
		case j > 0:
			provs = slices.Delete(provs, j, j+1)
		}
		next.Resources[i].Providers = append([]Provider{{Identity: &struct{}{}}}, provs...)
		changed = true
	}
	return changed, nil
}
