package kube_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/kube"
)

// counting counts the API connections dialled through the node.
type counting struct {
	kube.Host
	n atomic.Int32
}

func (c *counting) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.Host.DialContext(ctx, network, addr)
}

// The lab's admin.conf read off cp1: directly when the runner reaches the
// API server, and through cp1's SSH connection when told to (as when the
// server address is only reachable from the node).
func TestFromHostInTheLab(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	conn := harness.Connect(t, l, "cp1")
	for _, tunnel := range []bool{false, true} {
		h := &counting{Host: conn}
		rc, tunnelled, err := kube.FromHost(ctx, h, "", tunnel, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if tunnelled != tunnel {
			t.Fatalf("tunnel %v: the lab's API server is reachable, yet tunnelled=%v", tunnel, tunnelled)
		}
		c, err := kubernetes.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) < 5 {
			t.Fatalf("tunnel %v: %v", tunnel, err)
		}
		if through := h.n.Load() > 0; through != tunnel {
			t.Fatalf("tunnel %v: %d connections went through cp1", tunnel, h.n.Load())
		}
	}
	// no such file: a clear error
	if _, _, err := kube.FromHost(ctx, conn, "/etc/kubernetes/nope.conf", false, time.Second); err == nil {
		t.Fatal("a missing kubeconfig was accepted")
	}
}

type fakeHost struct{ conf string }

func (f fakeHost) ReadFile(context.Context, string) ([]byte, error) { return []byte(f.conf), nil }
func (f fakeHost) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, net.ErrClosed
}

// A server the runner cannot reach is reached through the node.
func TestFromHostTunnelsWhenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	conf := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://` + closed + `"}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	rc, tunnelled, err := kube.FromHost(context.Background(), fakeHost{conf}, "", false, time.Second)
	if err != nil || !tunnelled || rc.Dial == nil || rc.BearerToken != "secret-token" {
		t.Fatalf("tunnelled %v, dial set %v: %v", tunnelled, rc != nil && rc.Dial != nil, err)
	}
}
