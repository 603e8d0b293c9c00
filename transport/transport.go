// Package transport is the contract between what runs steps (the engine,
// modules) and how hosts are reached (transport/ssh, transport/local, test
// fakes): a connection that runs commands, and the optional capabilities a
// connection may have. It is a leaf: it imports nothing of kubeplay but
// secret, so a transport never depends on modules, client-go or etcd.
package transport

import (
	"context"
	"io"
	"net"
	"strings"

	"github.com/kubeplay/kubeplay/secret"
)

// Conn runs commands on a host.
type Conn interface {
	Exec(ctx context.Context, c Cmd) (ExecResult, error)
}

// Cmd is one command to run. Exactly one of Argv and Shell is set. Secrets
// travel in Stdin or Env, never in Argv or Shell.
type Cmd struct {
	Argv  []string
	Shell string
	Dir   string
	Env   map[string]secret.String
	Stdin io.Reader
}

// String renders the command for logs (env values are never shown).
func (c Cmd) String() string {
	if c.Shell != "" {
		return c.Shell
	}
	return strings.Join(c.Argv, " ")
}

// ExecResult is the outcome of a command that ran to completion.
type ExecResult struct {
	Stdout string
	Stderr string
	RC     int
}

// FileReader is a connection that reads the host's files into memory.
type FileReader interface {
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

// Dialer is a connection that opens TCP connections from the host (to a
// service bound to the host's loopback, such as etcd's client port).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Node is a connection with both: what an etcd client, an API client
// through a node, or a check of served certificates needs.
type Node interface {
	FileReader
	Dialer
}
