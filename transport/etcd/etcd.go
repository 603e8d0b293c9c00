// Package etcd opens etcd v3 clients through a control-plane node: the gRPC
// connections are SSH direct-tcpip channels from that node, and the client
// certificate is read from the node's kubeadm PKI into memory. Nothing is
// written to the runner's disk and no etcdctl is needed on the node.
package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/transport"
)

// Node is what the client needs of the node it goes through: TCP from the
// node, and its files.
type Node = transport.Node

// Certs names the PEM files on the node.
type Certs struct {
	CA   string
	Cert string
	Key  string
}

// KubeadmCerts are the files kubeadm creates for health checks.
func KubeadmCerts() Certs {
	return Certs{
		CA:   "/etc/kubernetes/pki/etcd/ca.crt",
		Cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
		Key:  "/etc/kubernetes/pki/etcd/healthcheck-client.key",
	}
}

// DefaultEndpoint is the node-local client URL of a kubeadm stacked etcd.
const DefaultEndpoint = "https://127.0.0.1:2379"

// Options configure Open.
type Options struct {
	Endpoints   []string // default DefaultEndpoint
	Certs       Certs    // default KubeadmCerts
	DialTimeout time.Duration
	Log         *zap.Logger
}

// ErrConfig marks a client that cannot be built from the node's files
// (missing or invalid certificates); retrying does not help.
var ErrConfig = errors.New("etcd client configuration")

// Open returns a client whose connections all go through node.
func Open(ctx context.Context, node Node, o Options) (*clientv3.Client, error) {
	if len(o.Endpoints) == 0 {
		o.Endpoints = []string{DefaultEndpoint}
	}
	if o.Certs == (Certs{}) {
		o.Certs = KubeadmCerts()
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	tc, err := tlsConfig(ctx, node, o.Certs)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return node.DialContext(ctx, "tcp", addr)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   o.Endpoints,
		TLS:         tc,
		DialTimeout: o.DialTimeout,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial), grpc.WithChainUnaryInterceptor(audit(o.Log))},
		Logger:      o.Log,
		Context:     ctx,
	})
	if err != nil {
		return nil, failure.Retryable(fmt.Errorf("etcd client for %v: %w", o.Endpoints, err))
	}
	return cli, nil
}

// changes says whether an RPC changes the cluster rather than reads it;
// each such call is logged (an audit trail an operator, and the tests, can
// read).
func changes(method string, req any) bool {
	switch method {
	case "/etcdserverpb.Cluster/MemberAdd", "/etcdserverpb.Cluster/MemberRemove", "/etcdserverpb.Cluster/MemberUpdate",
		"/etcdserverpb.Cluster/MemberPromote", "/etcdserverpb.Maintenance/Defragment", "/etcdserverpb.Maintenance/MoveLeader":
		return true
	case "/etcdserverpb.Maintenance/Alarm":
		r, ok := req.(*etcdserverpb.AlarmRequest)
		return ok && r.Action == etcdserverpb.AlarmRequest_DEACTIVATE
	}
	return false
}

// AuditMessage is the log message of each cluster-changing call.
const AuditMessage = "etcd cluster change"

func audit(log *zap.Logger) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if changes(method, req) {
			log.Info(AuditMessage, zap.String("call", path.Base(method)), zap.String("endpoint", cc.Target()), zap.Error(err))
		}
		return err
	}
}

func tlsConfig(ctx context.Context, node Node, c Certs) (*tls.Config, error) {
	read := func(p string) ([]byte, error) {
		b, err := node.ReadFile(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("read etcd credential: %w", err)
		}
		return b, nil
	}
	caPEM, err := read(c.CA)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(c.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(c.Key)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		// the error text of X509KeyPair never contains key material
		return nil, fmt.Errorf("%w: client certificate %s: %v", ErrConfig, c.Cert, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: no certificate in %s", ErrConfig, c.CA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
