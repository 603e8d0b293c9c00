package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/etcd"
)

// EtcdClientParams are the client parameters every etcd step shares (inlined
// into its params). The client goes through the step's host: a
// control-plane node whose kubeadm PKI holds the client certificate.
type EtcdClientParams struct {
	Endpoints []string `yaml:"endpoints" doc:"client URLs to dial from the host (default https://127.0.0.1:2379, the host's own member)"`
	CACert    string   `yaml:"ca_cert" doc:"CA file on the host (default /etc/kubernetes/pki/etcd/ca.crt)"`
	Cert      string   `yaml:"cert" doc:"client certificate on the host (default the kubeadm healthcheck-client)"`
	Key       string   `yaml:"key" doc:"client key on the host (read into memory only)"`
}

// ErrNoTunnel is returned when an etcd step runs on a connection that can
// neither open TCP connections from the host nor read its files.
var ErrNoTunnel = errors.New("etcd steps need an SSH (or local) connection to a control-plane node")

func (c EtcdClientParams) validate() error {
	set := 0
	for _, s := range []string{c.CACert, c.Cert, c.Key} {
		if s != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("ca_cert, cert and key go together")
	}
	return nil
}

// validateWith is validate for a step with a bound on its long waits and
// on each member's calls.
func (c EtcdClientParams) validateWith(timeout, member time.Duration) error {
	if timeout <= 0 || member <= 0 {
		return errors.New("timeouts must be positive")
	}
	return c.validate()
}

// open dials etcd through the target's host.
func (c EtcdClientParams) open(ctx context.Context, t *Target) (*clientv3.Client, error) {
	node, ok := t.Conn.(transport.Node)
	if !ok {
		return nil, ErrNoTunnel
	}
	o := etcd.Options{Endpoints: c.Endpoints, Log: t.Log.Named("etcd")}
	if c.Cert != "" {
		o.Certs = etcd.Certs{CA: c.CACert, Cert: c.Cert, Key: c.Key}
	}
	return etcd.Open(ctx, node, o)
}

// inspect opens a client, gathers the cluster view and closes the client.
func (c EtcdClientParams) inspect(ctx context.Context, t *Target, perMember time.Duration) (*etcd.Cluster, error) {
	cli, err := c.open(ctx, t)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return etcd.Inspect(ctx, cli, perMember)
}

// asData turns a JSON-tagged value into the generic form expressions see
// after register.
func asData(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("asData: %v", err)) // only called with plain structs
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
