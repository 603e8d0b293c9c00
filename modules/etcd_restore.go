package modules

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kubeplay/kubeplay/etcdsnap"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/etcd"
)

// EtcdRestore is the disaster-recovery flow of seed section 29: every
// control plane's API server and etcd are stopped, each member's data dir
// is restored from one verified snapshot, and everything is started again.
type EtcdRestore struct{}

// EtcdRestoreParams are etcd-restore's parameters.
type EtcdRestoreParams struct {
	Snapshot      string        `yaml:"snapshot" required:"true" runner:"path" doc:"the snapshot on the runner machine (etcd-snapshot's data.path, or a backup); verified before anything is stopped"`
	EncryptionKey secret.String `yaml:"encryption_key" doc:"the snapshot's key, when etcd-snapshot encrypted it"`
	Hosts         []string      `yaml:"hosts" required:"true" doc:"every control-plane host with an etcd member: the restored cluster is exactly these members"`
	Confirm       bool          `yaml:"confirm" doc:"must be true: the cluster's whole state goes back to the snapshot's"`
	RevisionBump  uint64        `yaml:"revision_bump" default:"1000000000" doc:"raise the revision by this much and mark it compacted, so that watchers (every controller) never see it go back, as the docs recommend; 0 turns it off"`
	Timeout       time.Duration `yaml:"timeout" default:"5m" doc:"bound on each wait: components stopping, etcd healthy, API servers and controllers back"`
	MemberTimeout time.Duration `yaml:"member_timeout" default:"5s" doc:"bound on each member's status call"`
}

// Validate checks the parameters.
func (p *EtcdRestoreParams) Validate() error {
	if !p.Confirm {
		return errors.New("confirm: true is required: etcd-restore replaces the cluster's whole state with the snapshot's")
	}
	if p.Snapshot == "" || len(p.Hosts) == 0 {
		return errors.New("snapshot and hosts are required")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(p.Hosts)))) != len(p.Hosts) {
		return errors.New("hosts: a host is listed twice")
	}
	return EtcdClientParams{}.validateWith(p.Timeout, p.MemberTimeout)
}

func (EtcdRestore) Name() string { return "etcd-restore" }
func (EtcdRestore) Doc() string {
	return "Restore etcd from a snapshot on every control-plane host (disaster recovery). Refuses without confirm: true. The snapshot is verified first and every host must answer. Then the API servers, controller-managers, schedulers and etcd members are stopped (manifests parked in /etc/kubernetes/kubeplay-restore), each member's data is restored with etcd's own restore code on the runner (its name and peer URL from its manifest, a new cluster token, the revision bumped and compacted) and streamed into its configured data dir, the old one moved aside. etcd starts on every host, the step waits for a healthy cluster, then the API servers and the controllers start again, each waited for. Manifests and kubeadm-config are left as they are, so the next kubeadm upgrade keeps the restored data. A rerun after an interruption picks the parked manifests up and restores again. The old data dirs are kept; nothing else can be undone."
}
func (EtcdRestore) NewParams() Params { return &EtcdRestoreParams{} }

// restoreParkDir is where the control plane waits while etcd is restored;
// not static-pod-restart's park dir, which would put manifests back.
const restoreParkDir = "/etc/kubernetes/kubeplay-restore"

// restoreStop is the order components stop in: the API servers first
// (nothing writes while etcd goes down); they start in reverse.
var restoreStop = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// restoreMember is one host's member, from its manifest.
type restoreMember struct {
	host    string
	conn    Conn
	name    string
	peer    string
	dataDir string
	parked  []string // components whose manifests are parked
}

// members reads every host's etcd manifest (in the kubelet's directory, or
// parked by an interrupted run).
func (p *EtcdRestoreParams) members(ctx context.Context, t *Target) ([]*restoreMember, error) {
	if t.Peers == nil {
		return nil, errors.New("etcd-restore needs the runner's connections to other hosts")
	}
	var out []*restoreMember
	for _, h := range p.Hosts {
		conn, err := t.Peers.Conn(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("every host must answer before a restore: %s: %w", h, err)
		}
		src, ok, err := readFile(ctx, conn, manifestDir+"/etcd.yaml")
		if err == nil && !ok {
			src, ok, err = readFile(ctx, conn, restoreParkDir+"/etcd.yaml")
		}
		if err != nil {
			return nil, fmt.Errorf("etcd manifest on %s: %w", h, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s has no etcd manifest (in %s or %s): not a stacked etcd member", h, manifestDir, restoreParkDir)
		}
		flags, err := podFlags(src, "etcd")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h, err)
		}
		m := &restoreMember{host: h, conn: conn, name: flags["name"], peer: strings.Split(flags["initial-advertise-peer-urls"], ",")[0],
			dataDir: flags["data-dir"]}
		if m.name == "" || m.peer == "" || m.dataDir == "" {
			return nil, fmt.Errorf("etcd manifest on %s lacks --name, --initial-advertise-peer-urls or --data-dir", h)
		}
		if err := absPath("data-dir", m.dataDir); err != nil {
			return nil, fmt.Errorf("%s: %w", h, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func initialClusterOf(ms []*restoreMember) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.name + "=" + m.peer
	}
	return strings.Join(parts, ",")
}

// Check verifies the snapshot and names what would be restored.
func (EtcdRestore) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*EtcdRestoreParams)
	tmp, err := os.MkdirTemp("", "kubeplay-restore-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	_, st, err := rp.verify(tmp)
	if err != nil {
		return Result{}, err
	}
	ms, err := rp.members(ctx, t)
	if err != nil {
		return Result{}, err
	}
	var names []string
	for _, m := range ms {
		names = append(names, fmt.Sprintf("%s (%s on %s)", m.name, m.dataDir, m.host))
	}
	return Result{Changed: true, Msg: fmt.Sprintf("would stop the control plane and restore revision %d (%d keys) into %s", st.Revision, st.Keys, strings.Join(names, ", "))}, nil
}

// verify opens (decrypts, when sealed, into tmp) and verifies the
// snapshot, returning the plaintext's path.
func (p *EtcdRestoreParams) verify(tmp string) (string, etcdsnap.Status, error) {
	plain, st, err := openSnapshot(p.Snapshot, p.EncryptionKey, tmp)
	if err != nil {
		return "", st, fmt.Errorf("refusing to restore: %w", err)
	}
	return plain, st, nil
}

// Run restores.
func (EtcdRestore) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*EtcdRestoreParams)
	tmp, err := os.MkdirTemp("", "kubeplay-restore-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	plain, st, err := rp.verify(tmp)
	if err != nil {
		return Result{}, err
	}
	ms, err := rp.members(ctx, t)
	if err != nil {
		return Result{}, err
	}
	sum := sha256.Sum256([]byte(t.RunID + st.SHA256))
	token := "kubeplay-restore-" + hex.EncodeToString(sum[:6])
	data := map[string]any{"revision": st.Revision, "keys": st.Keys, "token": token}
	// whatever fails from here leaves components parked: say where, and
	// that a rerun (which finds them there) finishes the job
	fail := func(err error) (Result, error) {
		return Result{Changed: true, Data: data}, fmt.Errorf("%w (components not yet started again are parked in %s on their hosts; run the step again to finish)", err, restoreParkDir)
	}

	// stop: API servers first, etcd last, on every host
	for _, comp := range restoreStop {
		for _, m := range ms {
			if err := rp.park(ctx, t, m, comp); err != nil {
				return fail(err)
			}
		}
	}
	moved := map[string]any{}
	for _, m := range ms {
		aside, err := rp.restoreInto(ctx, t, m, plain, tmp, initialClusterOf(ms), token)
		if err != nil {
			return fail(fmt.Errorf("restore %s on %s: %w", m.name, m.host, err))
		}
		moved[m.host] = aside
	}
	data["old_data_dirs"] = moved
	// start: etcd everywhere (a member alone has no quorum), then the rest
	for i := len(restoreStop) - 1; i >= 0; i-- {
		comp := restoreStop[i]
		for _, m := range ms {
			if err := rp.unpark(ctx, m, comp); err != nil {
				return fail(err)
			}
		}
		if comp == "etcd" {
			c, err := rp.waitEtcd(ctx, t, ms[0])
			if err != nil {
				return fail(err)
			}
			data["members"] = asData(c)["members"]
		}
		for _, m := range ms {
			if slices.Contains(m.parked, comp) {
				if err := rp.waitHealthy(ctx, t, m, comp); err != nil {
					return fail(err)
				}
			}
		}
	}
	return Result{Changed: true, Data: data, Msg: fmt.Sprintf("restored revision %d (%d keys) on %d members; old data dirs kept beside", st.Revision, st.Keys, len(ms))}, nil
}

// park moves a component's manifest out and waits until it stops. A
// component without a manifest on the host is skipped; one parked by an
// interrupted run counts as parked.
func (rp *EtcdRestoreParams) park(ctx context.Context, t *Target, m *restoreMember, comp string) error {
	r, err := runScript(ctx, m.conn, `if [ -f "$1/$3.yaml" ]; then mkdir -p -m 0700 "$2" && mv -f "$1/$3.yaml" "$2/$3.yaml" && echo parked
elif [ -f "$2/$3.yaml" ]; then echo parked; fi`, manifestDir, restoreParkDir, comp)
	if err != nil {
		return fmt.Errorf("stop %s on %s: %w", comp, m.host, err)
	}
	if !strings.Contains(r.Stdout, "parked") {
		return nil
	}
	m.parked = append(m.parked, comp)
	tun, ok := m.conn.(transport.Dialer)
	if !ok {
		return ErrNoTunnel
	}
	w := componentWait{Timeout: rp.Timeout, Interval: time.Second}
	err = w.closed(ctx, t, tun, staticPodHealth[comp].addr, comp+" on "+m.host)
	if err == nil {
		t.Log.Info("stopped for the restore", zap.String("component", comp), zap.String("on", m.host))
	}
	return err
}

func (rp *EtcdRestoreParams) unpark(ctx context.Context, m *restoreMember, comp string) error {
	if !slices.Contains(m.parked, comp) {
		return nil
	}
	if _, err := runScript(ctx, m.conn, `mv -f "$2/$3.yaml" "$1/$3.yaml"`, manifestDir, restoreParkDir, comp); err != nil {
		return fmt.Errorf("start %s on %s: %w", comp, m.host, err)
	}
	return nil
}

func (rp *EtcdRestoreParams) waitHealthy(ctx context.Context, t *Target, m *restoreMember, comp string) error {
	tun := m.conn.(transport.Dialer)
	w := componentWait{Timeout: rp.Timeout, Interval: time.Second}
	return w.healthy(ctx, t, tun, comp, comp+" on "+m.host+" to answer "+staticPodHealth[comp].path+" ok")
}

// waitEtcd waits until the restored cluster has every member healthy.
func (rp *EtcdRestoreParams) waitEtcd(ctx context.Context, t *Target, via *restoreMember) (*etcd.Cluster, error) {
	node, ok := via.conn.(transport.Node)
	if !ok {
		return nil, ErrNoTunnel
	}
	// one client for the whole wait: it connects lazily, so it can be
	// opened before the members are up
	cli, err := etcd.Open(ctx, node, etcd.Options{Log: t.Log.Named("etcd")})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var c *etcd.Cluster
	var last error
	w := componentWait{Timeout: rp.Timeout, Interval: 2 * time.Second}
	err = w.until(ctx, t, "the restored etcd cluster to be healthy", func(ctx context.Context) bool {
		var err error
		c, err = etcd.Inspect(ctx, cli, rp.MemberTimeout)
		if err != nil {
			last = err
			return false
		}
		if probs := changeRules().problems(c); len(probs) > 0 {
			last = errors.New(strings.Join(probs, "; "))
			return false
		}
		return len(c.Members) == len(rp.Hosts)
	})
	if err != nil {
		return c, fmt.Errorf("%w (last: %v)", err, last)
	}
	return c, nil
}

// restoreInto restores the member's data on the runner and streams it into
// the host's data dir, moving the old one aside. It returns where.
func (rp *EtcdRestoreParams) restoreInto(ctx context.Context, t *Target, m *restoreMember, snap, tmp, cluster, token string) (string, error) {
	dir := filepath.Join(tmp, "member-"+m.name)
	if err := etcdsnap.Restore(snap, etcdsnap.RestoreOptions{Name: m.name, DataDir: dir, PeerURLs: []string{m.peer},
		InitialCluster: cluster, Token: token, RevisionBump: rp.RevisionBump}, t.Log.Named("etcd")); err != nil {
		return "", err
	}
	aside := backupName(m.dataDir, t.Clock.Now())
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, dir)) }()
	r, err := m.conn.Exec(ctx, Cmd{Argv: []string{"/bin/sh", "-c", `set -e
if [ -e "$1" ]; then mv -- "$1" "$2"; fi
mkdir -m 0700 -- "$1"
tar -x -C "$1" --no-same-owner
chmod 0700 "$1"`, "kubeplay", m.dataDir, aside}, Stdin: pr})
	pr.Close()
	if err == nil && r.RC != 0 {
		err = fmt.Errorf("%w: exit code %d: %s", ErrCommandFailed, r.RC, lastLine(r.Stderr))
	}
	if err != nil {
		return "", err
	}
	t.Log.Info("restored etcd data", zap.String("member", m.name), zap.String("on", m.host), zap.String("data_dir", m.dataDir), zap.String("old_moved_to", aside))
	return aside, nil
}

// tarDir writes dir's tree as a tar stream (regular files and directories).
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("%s: not a regular file or directory", path)
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
