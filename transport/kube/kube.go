// Package kube builds Kubernetes API clients from a kubeconfig read off a
// control-plane node (kubeconfig: {from_host: ...}): the file is read over
// the node's SSH connection into memory, never written on the runner, and
// when its server address cannot be reached from the runner, the API
// connections go through that same SSH connection.
package kube

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeplay/kubeplay/transport"
)

// DefaultPath is where kubeadm writes the admin kubeconfig.
const DefaultPath = "/etc/kubernetes/admin.conf"

// Host is what FromHost needs of a node's connection.
type Host = transport.Node

// FromHost builds a client config from the kubeconfig at path on h. With
// tunnel, or when the server is not reachable from the runner within
// probe, API connections are dialled from h. It reports whether they are.
func FromHost(ctx context.Context, h Host, path string, tunnel bool, probe time.Duration) (*rest.Config, bool, error) {
	if path == "" {
		path = DefaultPath
	}
	b, err := h.ReadFile(ctx, path)
	if err != nil {
		return nil, false, fmt.Errorf("read kubeconfig: %w", err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		return nil, false, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if !tunnel {
		tunnel = !reachable(ctx, rc.Host, probe)
	}
	if tunnel {
		rc.Dial = h.DialContext
	}
	return rc, tunnel, nil
}

// reachable tries a TCP connection to the server's address.
func reachable(ctx context.Context, server string, probe time.Duration) bool {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return false
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	d := net.Dialer{Timeout: probe}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
