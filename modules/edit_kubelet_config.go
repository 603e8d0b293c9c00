package modules

import (
	"context"
	"errors"
	"fmt"
	"sort"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/kubeplay/kubeplay/internal/kubeletrules"
	"github.com/kubeplay/kubeplay/internal/yamledit"
)

// EditKubeletConfig edits a node's KubeletConfiguration file, refusing any
// result the kubelet would not load.
type EditKubeletConfig struct{ fileEdit }

// EditKubeletConfigParams are edit-kubelet-config's parameters.
type EditKubeletConfigParams struct {
	Path      string         `yaml:"path" default:"/var/lib/kubelet/config.yaml" doc:"the kubelet's config file"`
	Set       map[string]any `yaml:"set" doc:"fields to set, by path (cgroupDriver, evictionHard.\"memory.available\", ...)"`
	Merge     map[string]any `yaml:"merge" doc:"a mapping merged deeply into the configuration"`
	Delete    []string       `yaml:"delete" doc:"fields to remove, by path"`
	Backup    bool           `yaml:"backup" default:"true" doc:"keep a timestamped copy of the file, for rollback"`
	fileAttrs `yaml:",inline"`
}

// Validate checks the parameters.
func (p *EditKubeletConfigParams) Validate() error {
	if err := absPath("path", p.Path); err != nil {
		return err
	}
	if len(p.Set) == 0 && len(p.Merge) == 0 && len(p.Delete) == 0 {
		return errors.New("give set, merge or delete")
	}
	for _, op := range p.ops() {
		if err := op.Validate(); err != nil {
			return err
		}
	}
	// the fields and types are checked against KubeletConfiguration here,
	// before any host is touched, on a minimal configuration
	probe, err := yamledit.Apply([]byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"), yamledit.Selector{}, p.ops(), false)
	if err != nil {
		return err
	}
	if _, err := decodeKubeletConfig(string(probe)); err != nil {
		return err
	}
	return p.fileAttrs.validate()
}

func (p *EditKubeletConfigParams) ops() []yamledit.Op {
	var ops []yamledit.Op
	keys := make([]string, 0, len(p.Set))
	for k := range p.Set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ops = append(ops, yamledit.Op{Op: "set", Path: k, Value: p.Set[k]})
	}
	if len(p.Merge) > 0 {
		ops = append(ops, yamledit.Op{Op: "merge", Path: "", Value: p.Merge})
	}
	for _, k := range p.Delete {
		ops = append(ops, yamledit.Op{Op: "delete", Path: k})
	}
	return ops
}

func (EditKubeletConfig) Name() string { return "edit-kubelet-config" }
func (EditKubeletConfig) Doc() string {
	return "Edit /var/lib/kubelet/config.yaml (set, merge, delete by path) keeping comments and order; the result is decoded strictly as a KubeletConfiguration and checked against the kubelet's start-up rules (unknown field, wrong type, an unknown policy, a static CPU policy without a reservation, reservedMemory not adding up to kube-reserved + system-reserved + the eviction threshold: an error, nothing written). A kubeadm upgrade rewrites this file from the kubelet-config ConfigMap, so change that too for a lasting change; restart the kubelet to apply."
}
func (EditKubeletConfig) NewParams() Params { return &EditKubeletConfigParams{} }

// decodeKubeletConfig decodes text strictly as a KubeletConfiguration.
func decodeKubeletConfig(text string) (*kubeletv1beta1.KubeletConfiguration, error) {
	var c kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict([]byte(text), &c); err != nil {
		return nil, fmt.Errorf("not a valid KubeletConfiguration: %w", err)
	}
	if c.Kind != "KubeletConfiguration" || c.APIVersion != kubeletv1beta1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("not a KubeletConfiguration (kind %q, apiVersion %q)", c.Kind, c.APIVersion)
	}
	return &c, nil
}

// validKubeletConfig decodes text strictly and applies the kubelet's
// start-up rules (policies, reservations, the memory manager's sum rule).
func validKubeletConfig(text string) error {
	c, err := decodeKubeletConfig(text)
	if err != nil {
		return err
	}
	if err := kubeletrules.Check(c); err != nil {
		return fmt.Errorf("the kubelet would not start with it: %w", err)
	}
	return nil
}

func (p *EditKubeletConfigParams) plan(ctx context.Context, t *Target) (*fileChange, error) {
	st, before, after, err := planYAML(ctx, t, p.Path, yamledit.Selector{}, p.ops(), false)
	if err != nil {
		return nil, err
	}
	if err := validKubeletConfig(after); err != nil {
		return nil, fmt.Errorf("refusing to write %s: %w", p.Path, err)
	}
	return &fileChange{Path: p.Path, Stat: st, Before: before, After: after, Attrs: p.fileAttrs,
		Backup: p.Backup, Summary: "KubeletConfiguration"}, nil
}
