package session

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	kubetransport "github.com/kubeplay/kubeplay/transport/kube"
)

// KubeOptions say where a run's cluster access comes from.
type KubeOptions struct {
	Kubeconfig string // a kubeconfig file (default $KUBECONFIG, else ~/.kube/config)
	Context    string // its context
	FromHost   string // read admin.conf from the first host matching this pattern instead
}

// Hosts opens connections to inventory hosts (the SSH connector).
type Hosts interface {
	Connect(ctx context.Context, h *inventory.Host) (modules.Conn, error)
}

// Connect builds a run's cluster access: from a kubeconfig file, else from
// a host's admin.conf (KubeOptions.FromHost, or the inventory's
// kubeconfig: {from_host: ...}), else from $KUBECONFIG or ~/.kube/config.
// Without any kubeconfig the Cluster is zero: cluster steps then fail with
// ErrNoCluster, and node-only playbooks still run. close releases the host
// connection a tunnelled client needs.
func Connect(ctx context.Context, o KubeOptions, inv *inventory.Inventory, hosts Hosts) (modules.Cluster, func(), error) {
	noop := func() {}
	src := inv.Kubeconfig
	if o.FromHost != "" {
		src = &inventory.KubeconfigSource{FromHost: o.FromHost}
	}
	if o.Kubeconfig != "" || src == nil {
		rc, err := kubeconfig(o.Kubeconfig, o.Context)
		if err != nil || rc == nil {
			return modules.Cluster{}, noop, err
		}
		return clientsFor(rc, noop)
	}
	names, err := inv.Match(src.FromHost)
	if err != nil || len(names) == 0 {
		return modules.Cluster{}, noop, fmt.Errorf("%w: kubeconfig from_host %q matches no host", failure.ErrValidation, src.FromHost)
	}
	h, _ := inv.Host(names[0])
	conn, err := hosts.Connect(ctx, h)
	if err != nil {
		return modules.Cluster{}, noop, fmt.Errorf("kubeconfig from %s: %w", h.Name, err)
	}
	closeConn := func() {
		if c, ok := conn.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	kh, ok := conn.(kubetransport.Host)
	if !ok {
		closeConn()
		return modules.Cluster{}, noop, fmt.Errorf("kubeconfig from %s: the connection cannot read files", h.Name)
	}
	rc, _, err := kubetransport.FromHost(ctx, kh, src.Path, src.Tunnel, 3*time.Second)
	if err != nil {
		closeConn()
		return modules.Cluster{}, noop, fmt.Errorf("kubeconfig from %s: %w", h.Name, err)
	}
	return clientsFor(rc, closeConn)
}

// clientsFor builds the typed and dynamic clients of one REST config;
// closeFn runs on failure, and is returned as the cluster's close.
func clientsFor(rc *rest.Config, closeFn func()) (modules.Cluster, func(), error) {
	k, err := kubernetes.NewForConfig(rc)
	if err != nil {
		closeFn()
		return modules.Cluster{}, func() {}, err
	}
	d, err := dynamic.NewForConfig(rc)
	if err != nil {
		closeFn()
		return modules.Cluster{}, func() {}, err
	}
	return modules.Cluster{Kube: k, Dynamic: d, KubeConfig: rc}, closeFn, nil
}

// kubeconfig loads a kubeconfig; without one (no path, no KUBECONFIG, no
// ~/.kube/config) it returns nil.
func kubeconfig(path, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	rc, err := cc.ClientConfig()
	if err != nil {
		if path == "" && clientcmd.IsEmptyConfig(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: kubeconfig: %w", failure.ErrValidation, err)
	}
	return rc, nil
}
