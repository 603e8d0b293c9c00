package modules

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/internal/yamledit"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/etcd"
)

// EtcdMemberReplace replaces one etcd member with a new member on another
// host, the way seed section 29 does by hand (remove, add, start with
// initial-cluster-state=existing), guarded so that it never costs quorum:
// the new member joins as a learner and is promoted once it has caught up.
type EtcdMemberReplace struct{}

// EtcdMemberReplaceParams are etcd-member-replace's parameters.
type EtcdMemberReplaceParams struct {
	EtcdClientParams `yaml:",inline"`
	Member           string        `yaml:"member" required:"true" doc:"the member to replace: its name, hex ID, peer URL, or the inventory host it runs on"`
	NewHost          string        `yaml:"new_host" required:"true" doc:"inventory host of the new member: its kubelet runs static pods, and (certs: kubeadm) kubeadm is installed"`
	NewName          string        `yaml:"new_name" doc:"the new member's name (default: the new host's node name)"`
	NewAddress       string        `yaml:"new_address" doc:"the IP address the new member advertises (default: the new host's inventory address)"`
	OldHost          string        `yaml:"old_host" doc:"inventory host of the old member, whose etcd manifest is moved out if the host answers (default: the host named like the member, if its address is the member's)"`
	Snapshot         string        `yaml:"snapshot" required:"true" doc:"a snapshot this run took, on the runner (etcd-snapshot's data.path): verified before any change; \"skip\" to go without"`
	EncryptionKey    secret.String `yaml:"encryption_key" doc:"the snapshot's key, when etcd-snapshot encrypted it"`
	Certs            string        `yaml:"certs" default:"kubeadm" doc:"kubeadm: copy the etcd CA from the host to the new host if it lacks it, then create the new member's certificates with kubeadm init phase certs; present: the new host has them"`
	APIServerHosts   []string      `yaml:"apiserver_hosts" doc:"hosts whose kube-apiserver --etcd-servers names members explicitly: the old client URL is replaced by the new one, one host at a time, each waiting for /livez (kubeadm's stacked etcd uses 127.0.0.1 and needs none)"`
	Timeout          time.Duration `yaml:"timeout" default:"5m" doc:"bound on each wait: the old member stopping, the cluster accepting a change, the new member starting, catching up and being promoted, and the cluster settling"`
	MemberTimeout    time.Duration `yaml:"member_timeout" default:"5s" doc:"bound on each member's status call"`
}

// Validate checks the parameters.
func (p *EtcdMemberReplaceParams) Validate() error {
	if p.Member == "" || p.NewHost == "" {
		return errors.New("member and new_host are required")
	}
	if p.Snapshot == "" {
		return errors.New(`snapshot is required: the path of a snapshot this run took (etcd-snapshot registers it as data.path), or "skip"`)
	}
	if p.NewAddress != "" && net.ParseIP(p.NewAddress) == nil {
		return fmt.Errorf("new_address %q is not an IP address", p.NewAddress)
	}
	if p.Certs != "kubeadm" && p.Certs != "present" {
		return fmt.Errorf("certs %q: want kubeadm or present", p.Certs)
	}
	return p.EtcdClientParams.validateWith(p.Timeout, p.MemberTimeout)
}

func (EtcdMemberReplace) Name() string { return "etcd-member-replace" }
func (EtcdMemberReplace) Doc() string {
	return "Replace an etcd member with a new one on new_host, through the host (a healthy control-plane node that is not the old member's). Refuses, naming the rule, before any membership call: a removal that would leave fewer started, healthy voting members than the remaining members' quorum; a 2-member cluster; another learner pending; no verified snapshot from this run (unless snapshot: skip). Flow: prepare the new host (etcd CA and kubeadm certificates, an old data dir moved aside), move the old member's manifest out if its host answers, remove it, add the new member as a learner, write its static pod manifest (cloned from the host's, initial-cluster-state=existing), wait until it has started and caught up, promote it, wait until every member is healthy, then fix --etcd-servers on apiserver_hosts. \"unhealthy cluster\" refusals right after a change are retried until timeout. A run that stopped half way is detected on the next run (a learner not yet promoted; a member removed, recorded on the new host) and finished. Cannot be undone: a removed member cannot rejoin with its old data."
}
func (EtcdMemberReplace) NewParams() Params { return &EtcdMemberReplaceParams{} }

// ErrQuorumGuard marks a replacement refused because it could cost quorum
// or break one of etcd's reconfiguration rules. It is never retried.
var ErrQuorumGuard = errors.New("refused by the etcd quorum guard")

// replacePhase is how far a replacement has come.
type replacePhase int

const (
	phaseReplace replacePhase = iota // the old member is in the cluster, the new one is not
	phaseAdd                         // an earlier run removed the old member; the new one is not added
	phaseJoin                        // the new member is a learner: start (if need be) and promote it
	phaseDone                        // the new member votes and the old one is gone
)

func (ph replacePhase) String() string {
	return [...]string{"replace", "add", "join", "done"}[ph]
}

// replaceRecord is written on the new host before the old member is
// removed, so that a run that stops between removal and addition is
// finished by the next one instead of refused as "no such member".
type replaceRecord struct {
	ClusterID string    `json:"cluster_id"`
	OldName   string    `json:"old_name"`
	OldID     string    `json:"old_id"`
	OldPeer   string    `json:"old_peer_url"`
	NewPeer   string    `json:"new_peer_url"`
	RunID     string    `json:"run_id"`
	At        time.Time `json:"at"`
}

const replaceRecordPath = "/etc/kubernetes/kubeplay-etcd-replace.json"

// memberSelector matches the member to replace.
type memberSelector struct {
	text string // name, hex ID or peer URL
	addr string // the address of the inventory host named text, if any
}

func (s memberSelector) matches(m etcd.Member) bool {
	if m.Name == s.text || strings.EqualFold(m.ID, s.text) || slices.Contains(m.PeerURLs, s.text) {
		return true
	}
	return s.addr != "" && slices.ContainsFunc(m.PeerURLs, func(u string) bool { return urlHost(u) == s.addr })
}

func (s memberSelector) matchesRecord(r *replaceRecord) bool {
	return r.OldName == s.text || strings.EqualFold(r.OldID, s.text) || r.OldPeer == s.text || s.addr != "" && urlHost(r.OldPeer) == s.addr
}

func urlHost(u string) string {
	x, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return x.Hostname()
}

// replacePlan is what decide found.
type replacePlan struct {
	phase replacePhase
	old   etcd.Member // phaseReplace
	new   etcd.Member // phaseJoin, phaseDone
	rec   *replaceRecord
}

// decide finds the phase from the cluster (and the record on the new host)
// and applies the rules that refuse a replacement. It is pure: every
// refusal happens before any membership call.
func decide(c *etcd.Cluster, sel memberSelector, newPeer string, rec *replaceRecord) (replacePlan, error) {
	var olds []etcd.Member
	var nw *etcd.Member
	for i, m := range c.Members {
		if slices.Contains(m.PeerURLs, newPeer) {
			nw = &c.Members[i]
			continue
		}
		if sel.matches(m) {
			olds = append(olds, m)
		}
	}
	if len(olds) > 1 {
		return replacePlan{}, fmt.Errorf("member %q matches %d members; name one by ID or peer URL", sel.text, len(olds))
	}
	refuse := func(rule, format string, a ...any) error {
		return fmt.Errorf("%w (rule: %s): %s", ErrQuorumGuard, rule, fmt.Sprintf(format, a...))
	}
	// learners other than ours block any change (etcd allows one at a time)
	for _, m := range c.Members {
		if m.Learner && !slices.Contains(m.PeerURLs, newPeer) {
			return replacePlan{}, refuse("one learner at a time", "member %s (%s) is a learner not yet promoted; finish or remove it first", cmpName(m), m.ID)
		}
	}
	switch {
	case nw != nil && len(olds) == 1:
		return replacePlan{}, refuse("one change at a time", "the new member %s is already in the cluster while %s still is", cmpName(*nw), olds[0].Name)
	case nw != nil && !nw.Learner:
		return replacePlan{phase: phaseDone, new: *nw}, nil
	case nw != nil:
		return replacePlan{phase: phaseJoin, new: *nw}, nil
	case len(olds) == 0:
		if rec != nil && rec.ClusterID == c.ClusterID && rec.NewPeer == newPeer && sel.matchesRecord(rec) {
			if err := quorumNow(c, refuse); err != nil {
				return replacePlan{}, err
			}
			return replacePlan{phase: phaseAdd, rec: rec}, nil
		}
		return replacePlan{}, fmt.Errorf("no etcd member matches %q (members: %s)", sel.text, memberNames(c))
	}
	old := olds[0]
	if old.Learner {
		return replacePlan{}, refuse("replace voting members", "%s is a learner; remove it instead of replacing it", old.Name)
	}
	if c.Voters == 2 {
		return replacePlan{}, refuse("no 2-member cluster", "the cluster has 2 voting members: removing one leaves a single point of failure and losing either loses quorum; add a member first, then remove %s", old.Name)
	}
	if err := quorumNow(c, refuse); err != nil {
		return replacePlan{}, err
	}
	remaining := c.Voters - 1
	quorum := remaining/2 + 1
	var healthy []string
	for _, m := range c.Members {
		if !m.Learner && m.ID != old.ID && m.Reachable {
			healthy = append(healthy, m.Name)
		}
	}
	if len(healthy) < quorum {
		var down []string
		for _, m := range c.Members {
			if !m.Learner && m.ID != old.ID && !m.Reachable {
				down = append(down, cmpName(m))
			}
		}
		return replacePlan{}, refuse("removal keeps quorum",
			"removing %s would leave %d started, healthy voting member(s) (%s) where the remaining %d need a quorum of %d; replace the unhealthy member(s) %s first",
			old.Name, len(healthy), strings.Join(healthy, ", "), remaining, quorum, strings.Join(down, ", "))
	}
	return replacePlan{phase: phaseReplace, old: old}, nil
}

// quorumNow refuses a change to a cluster that cannot commit now.
func quorumNow(c *etcd.Cluster, refuse func(rule, format string, a ...any) error) error {
	if c.Leader == "" || !c.QuorumRead || c.ReachableVoters < c.Quorum {
		return refuse("quorum now", "the cluster has no leader or cannot commit (%d of %d voting members reachable, read: %s)", c.ReachableVoters, c.Voters, cmp.Or(c.ReadError, "ok"))
	}
	return nil
}

func cmpName(m etcd.Member) string { return cmp.Or(m.Name, "(unstarted)") }

func memberNames(c *etcd.Cluster) string {
	var n []string
	for _, m := range c.Members {
		n = append(n, cmpName(m))
	}
	return strings.Join(n, ", ")
}

// replaceJob is one run of the module: the resolved hosts and the client.
type replaceJob struct {
	p       *EtcdMemberReplaceParams
	t       *Target
	cli     *clientv3.Client
	newConn Conn
	newName string
	newIP   string
	oldHost string
	oldAddr string
	sel     memberSelector
}

func (j *replaceJob) newPeer() string   { return "https://" + net.JoinHostPort(j.newIP, "2380") }
func (j *replaceJob) newClient() string { return "https://" + net.JoinHostPort(j.newIP, "2379") }

// resolve finds the hosts involved (without changing anything).
func (p *EtcdMemberReplaceParams) resolve(ctx context.Context, t *Target) (*replaceJob, error) {
	if t.Peers == nil {
		return nil, errors.New("etcd-member-replace needs the runner's connections to other hosts")
	}
	j := &replaceJob{p: p, t: t, sel: memberSelector{text: p.Member}}
	info, ok := t.Peers.Host(p.NewHost)
	if !ok {
		return nil, fmt.Errorf("new_host %s is not in the inventory", p.NewHost)
	}
	j.newName = cmp.Or(p.NewName, info.NodeName, info.Name)
	j.newIP = cmp.Or(p.NewAddress, info.Address)
	if net.ParseIP(j.newIP) == nil {
		return nil, fmt.Errorf("new host %s: address %q is not an IP address; give new_address", p.NewHost, j.newIP)
	}
	conn, err := t.Peers.Conn(ctx, p.NewHost)
	if err != nil {
		return nil, fmt.Errorf("new host %s: %w", p.NewHost, err)
	}
	j.newConn = conn
	// the old host only needs to be known here, not reachable: it is
	// often dead
	j.oldHost = cmp.Or(p.OldHost, p.Member)
	if oinfo, ok := t.Peers.Host(j.oldHost); ok {
		j.oldAddr = oinfo.Address
		if j.oldHost == p.Member {
			j.sel.addr = oinfo.Address
		}
	} else if p.OldHost != "" {
		return nil, fmt.Errorf("old_host %s is not in the inventory", p.OldHost)
	} else {
		j.oldHost = ""
	}
	return j, nil
}

// start resolves the hosts and opens the etcd client.
func (p *EtcdMemberReplaceParams) start(ctx context.Context, t *Target) (*replaceJob, error) {
	j, err := p.resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	if j.cli, err = p.open(ctx, t); err != nil {
		return nil, err
	}
	return j, nil
}

// readRecord reads the replacement record left on the new host.
func (j *replaceJob) readRecord(ctx context.Context) (*replaceRecord, error) {
	s, ok, err := readFile(ctx, j.newConn, replaceRecordPath)
	if err != nil || !ok {
		return nil, err
	}
	var r replaceRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", replaceRecordPath, j.p.NewHost, err)
	}
	return &r, nil
}

// plan inspects the cluster and decides.
func (j *replaceJob) plan(ctx context.Context) (*etcd.Cluster, replacePlan, error) {
	c, err := etcd.Inspect(ctx, j.cli, j.p.MemberTimeout)
	if err != nil {
		return nil, replacePlan{}, err
	}
	rec, err := j.readRecord(ctx)
	if err != nil {
		return nil, replacePlan{}, err
	}
	pl, err := decide(c, j.sel, j.newPeer(), rec)
	if err != nil {
		return c, pl, err
	}
	if pl.phase == phaseReplace {
		if host := urlHost(firstOf(pl.old.PeerURLs)); host != "" && host == j.t.Host.Address {
			return c, pl, fmt.Errorf("%w (rule: work through another member): %s is the member on %s itself; run the step on another control-plane host", ErrQuorumGuard, pl.old.Name, j.t.Host.Name)
		}
		if j.oldHost != "" && j.oldAddr != "" && !slices.ContainsFunc(pl.old.PeerURLs, func(u string) bool { return urlHost(u) == j.oldAddr }) {
			if j.p.OldHost != "" {
				return c, pl, fmt.Errorf("old_host %s (%s) is not where member %s runs (%s)", j.oldHost, j.oldAddr, pl.old.Name, strings.Join(pl.old.PeerURLs, ", "))
			}
			j.oldHost = "" // a host of the same name elsewhere: not ours to touch
		}
	}
	return c, pl, nil
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// checkSnapshot refuses a run without a fresh, verified snapshot.
func (j *replaceJob) checkSnapshot() error {
	if j.p.Snapshot == "skip" {
		return nil
	}
	path, err := runnerPath(j.p.Snapshot)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w (rule: snapshot first): %v", ErrQuorumGuard, err)
	}
	if fi.ModTime().Before(j.t.RunStart) {
		return fmt.Errorf("%w (rule: snapshot first): %s was taken before this run started (%s); take one in this run", ErrQuorumGuard, path, fi.ModTime().Format(time.RFC3339))
	}
	tmp, err := os.MkdirTemp("", "kubeplay-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, _, err := openSnapshot(path, j.p.EncryptionKey, tmp); err != nil {
		return fmt.Errorf("%w (rule: snapshot first): %v", ErrQuorumGuard, err)
	}
	return nil
}

// checkNewHost refuses a new host that cannot run the member: no running
// kubelet, or (unless the manifest is the new member's own, allowManifest)
// an etcd manifest there already. It says whether the manifest is there.
func (j *replaceJob) checkNewHost(ctx context.Context, allowManifest bool) (bool, error) {
	r, err := j.newConn.Exec(ctx, Cmd{Argv: []string{"/bin/sh", "-c", `systemctl is-active --quiet kubelet || echo kubelet-down
if [ -e /etc/kubernetes/manifests/etcd.yaml ]; then echo manifest; fi`}})
	if err != nil {
		return false, fmt.Errorf("new host %s: %w", j.p.NewHost, err)
	}
	present := strings.Contains(r.Stdout, "manifest")
	switch {
	case present && !allowManifest:
		return true, fmt.Errorf("%w (rule: new host ready): %s already has /etc/kubernetes/manifests/etcd.yaml (another etcd); move it away first", ErrQuorumGuard, j.p.NewHost)
	case !present && strings.Contains(r.Stdout, "kubelet-down"):
		return false, fmt.Errorf("%w (rule: new host ready): the kubelet on %s is not running; it starts the new member's static pod", ErrQuorumGuard, j.p.NewHost)
	}
	return present, nil
}

// sourceManifest is the host's own etcd manifest, the template of the new
// member's.
func (j *replaceJob) sourceManifest(ctx context.Context) (string, error) {
	s, ok, err := readFile(ctx, j.t.Conn, manifestDir+"/etcd.yaml")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%s has no %s/etcd.yaml to clone the new member's from (run the step on a control-plane host of the cluster)", j.t.Host.Name, manifestDir)
	}
	return s, nil
}

// podFlags returns the --flag=value pairs of a static pod's container.
func podFlags(manifest, container string) (map[string]string, error) {
	var pod struct {
		Spec struct {
			Containers []struct {
				Name    string   `yaml:"name"`
				Command []string `yaml:"command"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(manifest), &pod); err != nil {
		return nil, fmt.Errorf("%s manifest: %w", container, err)
	}
	for _, c := range pod.Spec.Containers {
		if c.Name != container {
			continue
		}
		out := map[string]string{}
		for _, a := range c.Command {
			if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
				out[k] = v
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s manifest: no container named %s", container, container)
}

// memberManifest derives the new member's manifest from another member's:
// its own name and addresses, the cluster to join, state existing.
func memberManifest(src, newName, newIP, initialCluster string) (string, error) {
	flags, err := podFlags(src, "etcd")
	if err != nil {
		return "", err
	}
	srcIP := urlHost(strings.Split(flags["initial-advertise-peer-urls"], ",")[0])
	if srcIP == "" {
		return "", errors.New("etcd manifest: no --initial-advertise-peer-urls to take the member's address from")
	}
	readdress := func(list string) string {
		parts := strings.Split(list, ",")
		for i, p := range parts {
			u, err := url.Parse(p)
			if err == nil && u.Hostname() == srcIP {
				u.Host = net.JoinHostPort(newIP, u.Port())
				parts[i] = u.String()
			}
		}
		return strings.Join(parts, ",")
	}
	set := func(flag, v string) yamledit.Op {
		return yamledit.Op{Op: "set-flag", Container: "etcd", Flag: flag, Value: v}
	}
	ops := []yamledit.Op{set("name", newName), set("initial-cluster", initialCluster), set("initial-cluster-state", "existing")}
	for _, f := range []string{"advertise-client-urls", "initial-advertise-peer-urls", "listen-client-urls", "listen-peer-urls", "listen-metrics-urls"} {
		if v, ok := flags[f]; ok {
			ops = append(ops, set(f, readdress(v)))
		}
	}
	ops = append(ops, yamledit.Op{Op: "set", Path: `metadata.annotations."kubeadm.kubernetes.io/etcd.advertise-client-urls"`, Value: readdress(cmp.Or(flags["advertise-client-urls"], "https://"+net.JoinHostPort(srcIP, "2379")))})
	for i := range ops {
		if err := ops[i].Validate(); err != nil {
			return "", err
		}
	}
	out, err := yamledit.Apply([]byte(src), yamledit.Selector{}, ops, false)
	if err != nil {
		return "", fmt.Errorf("etcd manifest: %w", err)
	}
	return string(out), nil
}

// prepareNewHost gives the new host its certificates and an empty data dir.
// It returns where an old data dir was moved.
func (j *replaceJob) prepareNewHost(ctx context.Context, manifest string) (string, error) {
	flags, err := podFlags(manifest, "etcd")
	if err != nil {
		return "", err
	}
	if j.p.Certs == "kubeadm" {
		if err := j.kubeadmCerts(ctx, flags); err != nil {
			return "", err
		}
	}
	dataDir := cmp.Or(flags["data-dir"], "/var/lib/etcd")
	aside := backupName(dataDir, j.t.Clock.Now())
	r, err := runScript(ctx, j.newConn, `if [ -d "$1/member" ]; then mv -- "$1" "$2" && echo moved; fi; mkdir -p -m 0700 -- "$1"`, dataDir, aside)
	if err != nil {
		return "", fmt.Errorf("data dir on %s: %w", j.p.NewHost, err)
	}
	if strings.Contains(r.Stdout, "moved") {
		j.t.Log.Warn("moved an old etcd data dir aside on the new host", zap.String("new_host", j.p.NewHost), zap.String("path", aside))
		return aside, nil
	}
	return "", nil
}

// kubeadmCerts copies the etcd CA if the new host lacks it (refusing a
// different one) and has kubeadm create the member's certificates.
func (j *replaceJob) kubeadmCerts(ctx context.Context, flags map[string]string) error {
	caPath := cmp.Or(flags["peer-trusted-ca-file"], etcd.KubeadmCerts().CA)
	keyPath := strings.TrimSuffix(caPath, ".crt") + ".key"
	src, ok := j.t.Conn.(transport.Node)
	if !ok {
		return ErrNoTunnel
	}
	ca, err := src.ReadFile(ctx, caPath)
	if err != nil {
		return fmt.Errorf("etcd CA on %s: %w", j.t.Host.Name, err)
	}
	have, present, err := readFile(ctx, j.newConn, caPath)
	if err != nil {
		return err
	}
	switch {
	case present && have != string(ca):
		return fmt.Errorf("%w (rule: one etcd CA): %s on %s is not the cluster's etcd CA", ErrQuorumGuard, caPath, j.p.NewHost)
	case !present:
		key, err := src.ReadFile(ctx, keyPath)
		if err != nil {
			return fmt.Errorf("etcd CA key on %s: %w", j.t.Host.Name, err)
		}
		_, err = runScript(ctx, j.newConn, `mkdir -p -m 0755 -- "$(dirname "$1")"`, caPath)
		if err == nil {
			_, err = writeFileAtomic(ctx, j.newConn, keyPath, string(key), false, time.Time{}, fileAttrs{Mode: "0600"})
		}
		clear(key)
		if err == nil {
			_, err = writeFileAtomic(ctx, j.newConn, caPath, string(ca), false, time.Time{}, fileAttrs{Mode: "0644"})
		}
		if err != nil {
			return fmt.Errorf("copy the etcd CA to %s: %w", j.p.NewHost, err)
		}
	}
	cfg, err := j.kubeadmConfig(ctx)
	if err != nil {
		return err
	}
	_, err = j.newConn.Exec(ctx, Cmd{Argv: []string{"/bin/sh", "-c", `set -e
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
cat > "$cfg"
for c in etcd-server etcd-peer etcd-healthcheck-client; do kubeadm init phase certs "$c" --config "$cfg"; done`}, Stdin: strings.NewReader(cfg)})
	if err != nil {
		return fmt.Errorf("kubeadm init phase certs on %s: %w", j.p.NewHost, err)
	}
	return nil
}

// kubeadmConfig is the configuration kubeadm makes the certificates from:
// the cluster's own ClusterConfiguration when the API is at hand (extra
// SANs, certificate dir), and the new member's name and address.
func (j *replaceJob) kubeadmConfig(ctx context.Context) (string, error) {
	cluster := ""
	if j.t.Kube != nil {
		cm, err := j.t.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("kubeadm-config: %w", err)
		}
		cluster = cm.Data["ClusterConfiguration"]
	}
	api := "kubeadm.k8s.io/v1beta4"
	if cluster == "" {
		r, err := runScript(ctx, j.newConn, `kubeadm version -o short`)
		if err != nil {
			return "", fmt.Errorf("kubeadm version on %s: %w", j.p.NewHost, err)
		}
		cluster = fmt.Sprintf("apiVersion: %s\nkind: ClusterConfiguration\nkubernetesVersion: %s\n", api, strings.TrimSpace(r.Stdout))
	} else {
		var head struct {
			APIVersion string `yaml:"apiVersion"`
		}
		if err := yaml.Unmarshal([]byte(cluster), &head); err == nil && head.APIVersion != "" {
			api = head.APIVersion
		}
	}
	return fmt.Sprintf("apiVersion: %s\nkind: InitConfiguration\nnodeRegistration: {name: %s}\nlocalAPIEndpoint: {advertiseAddress: %s}\n---\n%s",
		api, strconv.Quote(j.newName), strconv.Quote(j.newIP), cluster), nil
}

// retry calls f until it succeeds, fails with an error etcd does not
// refuse for a while after a change, or the timeout passes.
func (j *replaceJob) retry(ctx context.Context, what string, transient func(error) bool, f func(context.Context) error) error {
	var last error
	err := poll(ctx, j.t.Clock, pollSpec{Timeout: j.p.Timeout, Interval: 500 * time.Millisecond, MaxInterval: 5 * time.Second, Look: 30 * time.Second},
		func(ctx context.Context) (bool, string, error) {
			last = f(ctx)
			if last == nil || !transient(last) {
				return true, "", last
			}
			j.t.Log.Info("etcd refused a change for now; retrying", zap.String("call", what), zap.Error(last))
			return false, "", nil
		})
	return expired(err, func(nd *NotDone) error {
		return fmt.Errorf("%s: still refused after %s: %w", what, nd.After, last)
	})
}

func unhealthyCluster(err error) bool {
	return errors.Is(err, rpctypes.ErrUnhealthy)
}

// stopOld moves the old member's manifest out of the kubelet's directory,
// if its host answers, and waits until the member stops listening.
func (j *replaceJob) stopOld(ctx context.Context) (string, error) {
	if j.oldHost == "" {
		j.t.Log.Warn("no inventory host for the old member: not stopped (removal stops it)", zap.String("member", j.p.Member))
		return "", nil
	}
	conn, err := j.t.Peers.Conn(ctx, j.oldHost)
	if err != nil {
		j.t.Log.Warn("old member's host does not answer: not stopped (removal stops it)", zap.String("old_host", j.oldHost), zap.Error(err))
		return "", nil
	}
	parked := "/etc/kubernetes/etcd.yaml.kubeplay-removed-" + j.t.Clock.Now().UTC().Format("20060102T150405")
	r, err := runScript(ctx, conn, `if [ -f "$1" ]; then mv -f -- "$1" "$2" && echo "$2"; fi`, manifestDir+"/etcd.yaml", parked)
	if err != nil {
		return "", fmt.Errorf("move the old member's manifest out on %s: %w", j.oldHost, err)
	}
	tun, ok := conn.(transport.Dialer)
	if !ok {
		return strings.TrimSpace(r.Stdout), nil
	}
	w := componentWait{Timeout: j.p.Timeout, Interval: time.Second}
	err = w.closed(ctx, j.t, tun, "127.0.0.1:2379", "etcd on "+j.oldHost)
	return strings.TrimSpace(r.Stdout), err
}

// initialCluster is the --initial-cluster of the new member: every member
// of the cluster, the new (unstarted, so nameless) one under its name.
func initialCluster(members []*etcdMember, newID uint64, newName string) string {
	var parts []string
	for _, m := range members {
		name := m.Name
		if m.ID == newID {
			name = newName
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

type etcdMember struct {
	ID       uint64
	Name     string
	PeerURLs []string
}

func (j *replaceJob) members(ctx context.Context) ([]*etcdMember, error) {
	lctx, cancel := context.WithTimeout(ctx, j.p.MemberTimeout)
	defer cancel()
	ml, err := j.cli.MemberList(lctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	out := make([]*etcdMember, len(ml.Members))
	for i, m := range ml.Members {
		out[i] = &etcdMember{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs}
	}
	return out, nil
}

// join writes the new member's manifest (unless it is there), waits until
// the member has started and caught up, and promotes it.
func (j *replaceJob) join(ctx context.Context, newID uint64, manifest string) error {
	ms, err := j.members(ctx)
	if err != nil {
		return err
	}
	mf, err := memberManifest(manifest, j.newName, j.newIP, initialCluster(ms, newID, j.newName))
	if err != nil {
		return err
	}
	if _, present, err := readFile(ctx, j.newConn, manifestDir+"/etcd.yaml"); err != nil {
		return err
	} else if !present {
		if _, err := runScript(ctx, j.newConn, `mkdir -p -- "$1"`, manifestDir); err != nil {
			return err
		}
		if _, err := writeFileAtomic(ctx, j.newConn, manifestDir+"/etcd.yaml", mf, false, time.Time{}, fileAttrs{Mode: "0600"}); err != nil {
			return fmt.Errorf("write the new member's manifest on %s: %w", j.p.NewHost, err)
		}
	}
	j.t.Log.Info("waiting for the new etcd member to start and catch up", zap.String("member", j.newName), zap.String("new_host", j.p.NewHost))
	return j.retry(ctx, "promote "+j.newName, func(err error) bool {
		return errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || errors.Is(err, errNotStarted) || unhealthyCluster(err)
	}, func(ctx context.Context) error {
		if _, err := j.cli.Status(ctx, j.newClient()); err != nil {
			return fmt.Errorf("%w: %v", errNotStarted, err)
		}
		_, err := j.cli.MemberPromote(ctx, newID)
		return err
	})
}

var errNotStarted = errors.New("the new member has not started")

// settle waits until every member is healthy.
func (j *replaceJob) settle(ctx context.Context) (*etcd.Cluster, error) {
	var c *etcd.Cluster
	err := j.retry(ctx, "every member healthy", func(err error) bool { return errors.Is(err, ErrEtcdUnhealthy) }, func(ctx context.Context) error {
		var err error
		if c, err = etcd.Inspect(ctx, j.cli, j.p.MemberTimeout); err != nil {
			return fmt.Errorf("%w: %v", ErrEtcdUnhealthy, err)
		}
		return changeRules().check(c)
	})
	return c, err
}

// fixAPIServers replaces the old client URL in --etcd-servers of the given
// hosts' kube-apiservers, one at a time.
func (j *replaceJob) fixAPIServers(ctx context.Context, oldClientURLs []string) ([]string, error) {
	var fixed []string
	for _, h := range j.p.APIServerHosts {
		conn, err := j.t.Peers.Conn(ctx, h)
		if err != nil {
			return fixed, fmt.Errorf("apiserver host %s: %w", h, err)
		}
		path := manifestDir + "/kube-apiserver.yaml"
		src, ok, err := readFile(ctx, conn, path)
		if err != nil || !ok {
			return fixed, fmt.Errorf("kube-apiserver manifest on %s: present %v: %w", h, ok, err)
		}
		flags, err := podFlags(src, "kube-apiserver")
		if err != nil {
			return fixed, fmt.Errorf("kube-apiserver manifest on %s: %w", h, err)
		}
		servers := strings.Split(flags["etcd-servers"], ",")
		changed := false
		for i, s := range servers {
			if slices.Contains(oldClientURLs, s) {
				servers[i], changed = j.newClient(), true
			}
		}
		if !changed {
			continue
		}
		op := yamledit.Op{Op: "set-flag", Container: "kube-apiserver", Flag: "etcd-servers", Value: strings.Join(slices.Compact(servers), ",")}
		if err := op.Validate(); err != nil {
			return fixed, err
		}
		out, err := yamledit.Apply([]byte(src), yamledit.Selector{}, []yamledit.Op{op}, false)
		if err != nil {
			return fixed, fmt.Errorf("kube-apiserver manifest on %s: %w", h, err)
		}
		if _, err := writeFileAtomic(ctx, conn, path, string(out), true, j.t.Clock.Now(), fileAttrs{}); err != nil {
			return fixed, err
		}
		tun, ok := conn.(transport.Dialer)
		if ok {
			w := componentWait{Timeout: j.p.Timeout, Interval: time.Second}
			if err := w.healthy(ctx, j.t, tun, "kube-apiserver", "answer /livez on "+h); err != nil {
				return fixed, err
			}
		}
		fixed = append(fixed, h)
	}
	return fixed, nil
}

// Check reports the phase and what would be done, applying every refusal.
func (EtcdMemberReplace) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*EtcdMemberReplaceParams)
	j, err := rp.start(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer j.cli.Close()
	_, pl, err := j.plan(ctx)
	if err != nil {
		return Result{}, err
	}
	switch pl.phase {
	case phaseDone:
		return Result{Msg: fmt.Sprintf("%s already votes and %s is gone", j.newName, rp.Member)}, nil
	case phaseJoin:
		return Result{Changed: true, Msg: fmt.Sprintf("would start (if need be) and promote the learner %s on %s", j.newName, rp.NewHost)}, nil
	}
	if err := j.checkSnapshot(); err != nil {
		return Result{}, err
	}
	if _, err := j.checkNewHost(ctx, false); err != nil {
		return Result{}, err
	}
	what := "add " + j.newName + " (" + j.newPeer() + ") as a learner on " + rp.NewHost + ", start and promote it"
	if pl.phase == phaseReplace {
		what = fmt.Sprintf("stop and remove %s (%s), then %s", pl.old.Name, pl.old.ID, what)
	}
	return Result{Changed: true, Msg: "would " + what}, nil
}

// Run replaces the member, or finishes an earlier run's replacement.
func (EtcdMemberReplace) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	rp := p.(*EtcdMemberReplaceParams)
	j, err := rp.start(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer j.cli.Close()
	c, pl, err := j.plan(ctx)
	if err != nil {
		return Result{}, err
	}
	out := &replaceOutcome{data: map[string]any{"phase": pl.phase.String(), "new": map[string]any{"name": j.newName, "peer_url": j.newPeer(), "host": rp.NewHost}}}
	if pl.phase == phaseDone {
		out.data["members"] = asData(c)["members"]
		return Result{Msg: fmt.Sprintf("%s already votes and %s is gone", j.newName, rp.Member), Data: out.data}, nil
	}
	manifest, err := j.sourceManifest(ctx)
	if err != nil {
		return Result{}, err
	}
	var newID uint64
	var oldClients []string
	switch pl.phase {
	case phaseReplace, phaseAdd:
		if oldClients, err = j.removeOld(ctx, c, pl, manifest, out); err == nil {
			newID, err = j.addLearner(ctx)
		}
	case phaseJoin:
		newID, oldClients, err = j.rejoin(ctx, pl, manifest, out)
	}
	if err != nil {
		return out.fail(err)
	}
	return j.finish(ctx, newID, manifest, oldClients, out)
}

// replaceOutcome is what a replacement has done so far: whether it changed
// anything, and the data its result reports.
type replaceOutcome struct {
	changed bool
	data    map[string]any
}

func (o *replaceOutcome) fail(err error) (Result, error) {
	return Result{Changed: o.changed, Data: o.data}, err
}

// prepare readies the new host: certificates, an empty data dir (an old one
// moved aside) and the etcd image.
func (j *replaceJob) prepare(ctx context.Context, manifest string, out *replaceOutcome) error {
	aside, err := j.prepareNewHost(ctx, manifest)
	if err != nil {
		return err
	}
	out.changed = true
	if aside != "" {
		out.data["data_dir_moved_to"] = aside
	}
	return nil
}

// removeOld checks the snapshot and the new host, prepares it, and (for a
// replacement) records the replacement on it, stops the old member and
// removes it. It returns the old member's client URLs, which the API
// servers' --etcd-servers may name.
func (j *replaceJob) removeOld(ctx context.Context, c *etcd.Cluster, pl replacePlan, manifest string, out *replaceOutcome) ([]string, error) {
	if err := j.checkSnapshot(); err != nil {
		return nil, err
	}
	if _, err := j.checkNewHost(ctx, false); err != nil {
		return nil, err
	}
	if err := j.prepare(ctx, manifest, out); err != nil {
		return nil, err
	}
	if pl.phase != phaseReplace {
		// an earlier run removed the old member; its record says which
		rec := pl.rec
		out.data["removed"] = map[string]any{"name": rec.OldName, "id": rec.OldID, "peer_urls": []string{rec.OldPeer}, "by_run": rec.RunID}
		return nil, nil
	}
	out.data["removed"] = map[string]any{"name": pl.old.Name, "id": pl.old.ID, "peer_urls": pl.old.PeerURLs}
	rec := &replaceRecord{ClusterID: c.ClusterID, OldName: pl.old.Name, OldID: pl.old.ID, OldPeer: firstOf(pl.old.PeerURLs),
		NewPeer: j.newPeer(), RunID: j.t.RunID, At: j.t.Clock.Now().UTC()}
	b, _ := json.Marshal(rec)
	if _, err := writeFileAtomic(ctx, j.newConn, replaceRecordPath, string(b)+"\n", false, time.Time{}, fileAttrs{Mode: "0600"}); err != nil {
		return nil, fmt.Errorf("record the replacement on %s: %w", j.p.NewHost, err)
	}
	parked, err := j.stopOld(ctx)
	if parked != "" {
		out.data["old_manifest"] = parked
	}
	if err != nil {
		return nil, err
	}
	oldID, _ := strconv.ParseUint(pl.old.ID, 16, 64)
	if err := j.retry(ctx, "remove "+pl.old.Name, unhealthyCluster, func(ctx context.Context) error {
		_, err := j.cli.MemberRemove(ctx, oldID)
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil // an earlier attempt's removal went through
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("remove etcd member %s: %w", pl.old.Name, err)
	}
	j.t.Log.Info("removed etcd member", zap.String("member", pl.old.Name), zap.String("id", pl.old.ID))
	return pl.old.ClientURLs, nil
}

// addLearner adds the new member as a learner and returns its id.
func (j *replaceJob) addLearner(ctx context.Context) (uint64, error) {
	var newID uint64
	if err := j.retry(ctx, "add "+j.newName, unhealthyCluster, func(ctx context.Context) error {
		resp, err := j.cli.MemberAddAsLearner(ctx, []string{j.newPeer()})
		if err == nil {
			newID = resp.Member.ID
			return nil
		}
		// an attempt whose answer was lost may have added it
		if ms, lerr := j.members(ctx); lerr == nil {
			for _, m := range ms {
				if slices.Contains(m.PeerURLs, j.newPeer()) {
					newID = m.ID
					return nil
				}
			}
		}
		return err
	}); err != nil {
		return 0, fmt.Errorf("add %s as a learner: %w", j.newName, err)
	}
	j.t.Log.Info("added etcd learner", zap.String("member", j.newName), zap.String("id", strconv.FormatUint(newID, 16)))
	return newID, nil
}

// rejoin picks up a learner an earlier run added: a run stopped before the
// manifest was written never started the member there, so the host is
// prepared as for an addition.
func (j *replaceJob) rejoin(ctx context.Context, pl replacePlan, manifest string, out *replaceOutcome) (uint64, []string, error) {
	present, err := j.checkNewHost(ctx, true)
	if err != nil {
		return 0, nil, err
	}
	if !present {
		if err := j.prepare(ctx, manifest, out); err != nil {
			return 0, nil, err
		}
	}
	newID, _ := strconv.ParseUint(pl.new.ID, 16, 64)
	var oldClients []string
	if rec, _ := j.readRecord(ctx); rec != nil {
		oldClients = []string{"https://" + net.JoinHostPort(urlHost(rec.OldPeer), "2379")}
	}
	return newID, oldClients, nil
}

// finish starts and promotes the learner, waits until every member is
// healthy, points the API servers away from the old member, and removes
// the replacement's record.
func (j *replaceJob) finish(ctx context.Context, newID uint64, manifest string, oldClients []string, out *replaceOutcome) (Result, error) {
	out.changed = true
	out.data["new"].(map[string]any)["id"] = strconv.FormatUint(newID, 16)
	if err := j.join(ctx, newID, manifest); err != nil {
		return out.fail(fmt.Errorf("new member %s on %s (a learner: it does not count toward quorum; re-run to finish): %w", j.newName, j.p.NewHost, err))
	}
	j.t.Log.Info("promoted etcd member", zap.String("member", j.newName))
	c, err := j.settle(ctx)
	if c != nil {
		out.data["members"] = asData(c)["members"]
	}
	if err != nil {
		return out.fail(err)
	}
	fixed, err := j.fixAPIServers(ctx, oldClients)
	out.data["apiservers_updated"] = fixed
	if err != nil {
		return out.fail(fmt.Errorf("update --etcd-servers: %w", err))
	}
	if _, err := runScript(ctx, j.newConn, `rm -f -- "$1"`, replaceRecordPath); err != nil {
		return out.fail(err)
	}
	return Result{Changed: true, Data: out.data, Msg: fmt.Sprintf("replaced %s with %s (%s); %s", j.p.Member, j.newName, j.newPeer(), summary(c))}, nil
}
