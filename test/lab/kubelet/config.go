// Package kubelet is the lab's kubelet stand-in. It does what kubeadm
// runbooks observe of a kubelet: reads /var/lib/kubelet/config.yaml and
// kubeadm-flags.env (refusing to start on an invalid config, as the real one
// does), runs the static pods in /etc/kubernetes/manifests with the binary
// matching each image tag, publishes their mirror pods, and registers and
// heartbeats its Node with the kubelet version it was built as. Pods of
// workloads are completed by kwok.
package kubelet

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// Flags are the kubelet command-line flags the stand-in understands; others
// are accepted and ignored, as the real kubelet's deprecated ones would be.
type Flags struct {
	Config           string
	Kubeconfig       string
	BootstrapConfig  string
	HostnameOverride string
	NodeIP           string
	RuntimeEndpoint  string
	NodeLabels       string
	Other            map[string]string
}

// ParseFlags parses "--k=v" and "--k v" forms.
func ParseFlags(args []string) Flags {
	f := Flags{Other: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		k, v, ok := strings.Cut(a, "=")
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			v, i = args[i+1], i+1
		}
		switch k {
		case "config":
			f.Config = v
		case "kubeconfig":
			f.Kubeconfig = v
		case "bootstrap-kubeconfig":
			f.BootstrapConfig = v
		case "hostname-override":
			f.HostnameOverride = v
		case "node-ip":
			f.NodeIP = v
		case "container-runtime-endpoint":
			f.RuntimeEndpoint = v
		case "node-labels":
			f.NodeLabels = v
		default:
			f.Other[k] = v
		}
	}
	return f
}

// EnvFileArgs reads VAR="--a --b" style env files (kubeadm-flags.env,
// /etc/default/kubelet) and returns the words of var.
func EnvFileArgs(path, name string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var out []string
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && k == name {
			out = append(out, strings.Fields(strings.Trim(v, `"'`))...)
		}
	}
	return out, sc.Err()
}

// LoadConfig reads a KubeletConfiguration strictly: unknown fields, wrong
// types and invalid values are errors, and the kubelet does not start.
func LoadConfig(path string) (*kubeletv1beta1.KubeletConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kubelet config: %w", err)
	}
	var c kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("kubelet config %s: %w", path, err)
	}
	if c.Kind != "KubeletConfiguration" || c.APIVersion != "kubelet.config.k8s.io/v1beta1" {
		return nil, fmt.Errorf("kubelet config %s: want kind KubeletConfiguration, apiVersion kubelet.config.k8s.io/v1beta1", path)
	}
	switch c.CgroupDriver {
	case "", "systemd", "cgroupfs":
	default:
		return nil, fmt.Errorf("kubelet config %s: invalid cgroupDriver %q", path, c.CgroupDriver)
	}
	if c.StaticPodPath == "" {
		c.StaticPodPath = "/etc/kubernetes/manifests"
	}
	return &c, nil
}
