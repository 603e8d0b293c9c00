package modules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/internal/yamledit"
)

// ConfigMapEdit edits the YAML or text held in one key of a ConfigMap
// (kubeadm-config's ClusterConfiguration, kubelet-config's kubelet,
// kube-proxy's config.conf, coredns' Corefile).
type ConfigMapEdit struct{}

// TextOp is one text edit: replace every match of regexp, or insert a block
// after the first line matching after (once: not when the block is there).
type TextOp struct {
	Regexp  string `yaml:"regexp" doc:"replace: what to replace (RE2; $1 in replace refers to groups)"`
	Replace string `yaml:"replace" doc:"replace: the replacement"`
	After   string `yaml:"after" doc:"insert: the line (RE2) after which the block goes"`
	Insert  string `yaml:"insert" doc:"insert: the block of lines to insert when not already present"`

	re, after *regexp.Regexp
}

// ConfigMapEditParams are configmap-edit's parameters.
type ConfigMapEditParams struct {
	Namespace string            `yaml:"namespace" default:"kube-system" doc:"the ConfigMap's namespace"`
	Name      string            `yaml:"name" doc:"the ConfigMap (or give candidates)"`
	Names     []string          `yaml:"candidates" doc:"names to try in order, the first that exists is edited (kubelet-config, kubelet-config-1.37)"`
	Key       string            `yaml:"key" required:"true" doc:"the data key holding the text (ClusterConfiguration, kubelet, config.conf, Corefile)"`
	Select    yamledit.Selector `yaml:"select" doc:"YAML: which document of the key's text"`
	Ops       []yamledit.Op     `yaml:"ops" doc:"YAML edits (as yaml-edit): set, delete, merge, append, remove_item, set-arg (a kubeadm component's extraArgs in the shape of the document's version: a mapping in v1beta3, a list in v1beta4)"`
	TextOps   []TextOp          `yaml:"text_ops" doc:"text edits (Corefile): {regexp, replace} or {after, insert}"`
}

// Validate checks the parameters.
func (p *ConfigMapEditParams) Validate() error {
	if err := required("namespace", p.Namespace); err != nil {
		return err
	}
	if (p.Name == "") == (len(p.Names) == 0) {
		return errors.New("give name or candidates")
	}
	if p.Name != "" {
		p.Names = []string{p.Name}
	}
	if p.Key == "" {
		return errors.New("key is required")
	}
	if (len(p.Ops) == 0) == (len(p.TextOps) == 0) {
		return errors.New("give ops (YAML) or text_ops, one of them")
	}
	for i := range p.Ops {
		if err := p.Ops[i].Validate(); err != nil {
			return fmt.Errorf("ops[%d]: %w", i, err)
		}
	}
	for i := range p.TextOps {
		o := &p.TextOps[i]
		var err error
		switch {
		case o.Regexp != "" && o.After == "" && o.Insert == "":
			o.re, err = regexp.Compile(o.Regexp)
		case o.After != "" && o.Insert != "" && o.Regexp == "" && o.Replace == "":
			o.after, err = regexp.Compile(o.After)
		default:
			err = errors.New("want {regexp, replace} or {after, insert}")
		}
		if err != nil {
			return fmt.Errorf("text_ops[%d]: %w", i, err)
		}
	}
	return nil
}

func (ConfigMapEdit) Name() string { return "configmap-edit" }
func (ConfigMapEdit) Doc() string {
	return "Edit the YAML (ops, as yaml-edit, keeping comments and order) or text (text_ops) held in one key of a ConfigMap, such as kubeadm-config/ClusterConfiguration, kubelet-config/kubelet (validated as a KubeletConfiguration), kube-proxy/config.conf or coredns/Corefile. The update carries the resourceVersion read: on a conflict the ConfigMap is read again and the edit re-applied. --diff shows the change; rollback puts the previous text back unless someone changed it since."
}
func (ConfigMapEdit) NewParams() Params { return &ConfigMapEditParams{} }

// LocalOnly: the step talks to the API only.
func (ConfigMapEdit) LocalOnly() {}

// applyText runs the text ops.
func applyText(text string, ops []TextOp) string {
	for _, o := range ops {
		if o.re != nil {
			text = o.re.ReplaceAllString(text, o.Replace)
			continue
		}
		block := strings.TrimRight(o.Insert, "\n")
		if strings.Contains(text, block) {
			continue
		}
		lines, nl := splitLines(text)
		for i, l := range lines {
			if o.after.MatchString(l) {
				lines = append(lines[:i+1], append(strings.Split(block, "\n"), lines[i+1:]...)...)
				break
			}
		}
		text = joinLines(lines, nl)
	}
	return text
}

// get reads the first candidate ConfigMap that exists.
func (p *ConfigMapEditParams) get(ctx context.Context, t *Target) (*corev1.ConfigMap, error) {
	for _, n := range p.Names {
		var cm *corev1.ConfigMap
		err := kubeCall(ctx, func(ctx context.Context) (err error) {
			cm, err = t.Kube.CoreV1().ConfigMaps(p.Namespace).Get(ctx, n, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get configmap %s/%s: %w", p.Namespace, n, err)
		}
		return cm, nil
	}
	return nil, fmt.Errorf("no configmap %s in %s", strings.Join(p.Names, " or "), p.Namespace)
}

// edit computes the new text of the key.
func (p *ConfigMapEditParams) edit(cm *corev1.ConfigMap) (string, string, error) {
	before, ok := cm.Data[p.Key]
	if !ok {
		return "", "", fmt.Errorf("configmap %s/%s has no key %q", cm.Namespace, cm.Name, p.Key)
	}
	if len(p.TextOps) > 0 {
		return before, applyText(before, p.TextOps), nil
	}
	after, err := yamledit.Apply([]byte(before), p.Select, p.Ops, false)
	if err != nil {
		return before, "", fmt.Errorf("edit %s/%s %s: %w", cm.Namespace, cm.Name, p.Key, err)
	}
	if strings.HasPrefix(cm.Name, "kubelet-config") && p.Key == "kubelet" && string(after) != before {
		if err := validKubeletConfig(string(after)); err != nil {
			return before, "", fmt.Errorf("refusing to write %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	return before, string(after), nil
}

// plan reads the ConfigMap and computes the edit.
func (p *ConfigMapEditParams) plan(ctx context.Context, t *Target) (*corev1.ConfigMap, string, string, error) {
	if t.Kube == nil {
		return nil, "", "", ErrNoCluster
	}
	cm, err := p.get(ctx, t)
	if err != nil {
		return nil, "", "", err
	}
	before, after, err := p.edit(cm)
	return cm, before, after, err
}

func (p *ConfigMapEditParams) label(cm *corev1.ConfigMap) string {
	return fmt.Sprintf("configmap %s/%s key %s", cm.Namespace, cm.Name, p.Key)
}

// Check shows the change.
func (ConfigMapEdit) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	cp := p.(*ConfigMapEditParams)
	cm, before, after, err := cp.plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if before == after {
		return Result{Msg: cp.label(cm) + " is up to date"}, nil
	}
	return Result{Changed: true, Msg: "would edit " + cp.label(cm), Diff: unifiedDiff(cp.label(cm), before, after)}, nil
}

// Run edits the ConfigMap with optimistic concurrency.
func (ConfigMapEdit) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	cp := p.(*ConfigMapEditParams)
	for attempt := 1; ; attempt++ {
		cm, before, after, err := cp.plan(ctx, t)
		if err != nil {
			return Result{}, err
		}
		data := asData(configMapEditState{Namespace: cm.Namespace, Name: cm.Name, Key: cp.Key, Previous: before, Written: after})
		if before == after {
			return Result{Msg: cp.label(cm) + " is up to date", Data: data}, nil
		}
		next := cm.DeepCopy()
		next.Data[cp.Key] = after // carries cm's resourceVersion
		err = kubeCall(ctx, func(ctx context.Context) error {
			_, err := t.Kube.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, next, metav1.UpdateOptions{})
			return err
		})
		if apierrors.IsConflict(err) && attempt < 5 {
			if t.Log != nil {
				t.Log.Info("configmap changed since it was read; reading it again", zap.String("configmap", cm.Name))
			}
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("update %s: %w", cp.label(cm), err)
		}
		return Result{Changed: true, Msg: "edited " + cp.label(cm), Diff: unifiedDiff(cp.label(cm), before, after), Data: data}, nil
	}
}

// Undo puts the previous text back, unless the key changed since.
func (ConfigMapEdit) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	if !r.Changed {
		return nil
	}
	st, err := loadState[configMapEditState](r)
	if err != nil {
		return err
	}
	return kubeCall(ctx, func(ctx context.Context) error {
		cm, err := t.Kube.CoreV1().ConfigMaps(st.Namespace).Get(ctx, st.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data[st.Key] != st.Written {
			return fmt.Errorf("configmap %s/%s key %s changed since kubeplay edited it; not restoring over someone else's change", st.Namespace, st.Name, st.Key)
		}
		next := cm.DeepCopy()
		next.Data[st.Key] = st.Previous
		_, err = t.Kube.CoreV1().ConfigMaps(st.Namespace).Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}

// configMapEditState is configmap-edit's undo state: the key's text before
// the step, and what the step wrote (restored only while it is still there).
type configMapEditState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	Previous  string `json:"previous"`
	Written   string `json:"written"`
}
