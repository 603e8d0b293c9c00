package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kubeplay/kubeplay/internal/tty"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/session"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// accessFlags say how hosts (SSH) and the cluster (a kubeconfig) are
// reached: run's flags, and those of the inventory commands that read the
// cluster.
type accessFlags struct {
	sshConfig   string
	askBecome   bool
	becomeFile  string
	knownHosts  string
	acceptNew   bool
	useAgent    bool
	kubeconfig  string
	kcFromHost  string
	kubeContext string
}

func (f *accessFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.knownHosts, "known-hosts", os.Getenv("KUBEPLAY_KNOWN_HOSTS"), "known_hosts file that host keys are checked against (default $KUBEPLAY_KNOWN_HOSTS, else ~/.ssh/known_hosts)")
	fl.BoolVar(&f.acceptNew, "ssh-accept-new", false, "trust and record the key of a host not yet in known_hosts (a changed key is still refused)")
	fl.StringVar(&f.sshConfig, "ssh-config", "", "ssh_config file whose HostName, User, Port, IdentityFile and ProxyJump apply where the inventory is silent (default ~/.ssh/config; \"none\" for none)")
	fl.BoolVarP(&f.askBecome, "ask-become-pass", "K", false, "ask for the sudo password of hosts with become: true (it reaches sudo through stdin only)")
	fl.StringVar(&f.becomeFile, "become-password-file", "", "read the sudo password of hosts with become: true from this file")
	fl.BoolVar(&f.useAgent, "ssh-agent", true, "also offer keys from ssh-agent (SSH_AUTH_SOCK)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for cluster steps (default $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&f.kubeContext, "context", "", "kubeconfig context")
	fl.StringVar(&f.kcFromHost, "kubeconfig-from-host", "", "read the kubeconfig (/etc/kubernetes/admin.conf) from the first host matching this pattern over SSH, into memory; API connections go through that host when its server address is not reachable from here (also the inventory's kubeconfig: {from_host: ...})")
}

// options are the session's options for these flags (reading the become
// password, or asking for it).
func (f *accessFlags) options() (session.KubeOptions, ssh.Options, error) {
	pw, err := f.becomePassword()
	if err != nil {
		return session.KubeOptions{}, ssh.Options{}, err
	}
	return session.KubeOptions{Kubeconfig: f.kubeconfig, Context: f.kubeContext, FromHost: f.kcFromHost},
		ssh.Options{KnownHosts: f.knownHosts, AcceptNew: f.acceptNew, UseAgent: f.useAgent,
			Passphrase: tty.Passphrase, BecomePassword: pw, SSHConfig: f.sshConfig}, nil
}

// becomePassword reads sudo's password from --become-password-file, or
// asks for it on the terminal with --ask-become-pass.
func (f *accessFlags) becomePassword() (secret.String, error) {
	switch {
	case f.becomeFile != "" && f.askBecome:
		return secret.String{}, errors.New("give --ask-become-pass or --become-password-file, not both")
	case f.becomeFile != "":
		b, err := os.ReadFile(f.becomeFile)
		if err != nil {
			return secret.String{}, fmt.Errorf("become password: %w", err)
		}
		return secret.New(strings.TrimRight(string(b), "\r\n")), nil
	case f.askBecome:
		return tty.Password("BECOME password: ", "--ask-become-pass needs a terminal (use --become-password-file)")
	}
	return secret.String{}, nil
}

// roleFlag adds --role ROLE=PATTERN.
func roleFlag(fl *pflag.FlagSet, roles *[]string) {
	fl.StringArrayVar(roles, "role", nil, "the hosts of a role (control_plane, workers, etcd, nodes) as a host pattern: ROLE=PATTERN (repeatable); wins over the inventory's roles, its groups and the cluster's Nodes")
}
