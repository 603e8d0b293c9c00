package modules

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/rest"

	"github.com/kubeplay/kubeplay/internal/encconfig"
	"github.com/kubeplay/kubeplay/transport"
)

// EncryptionConfig keeps the kube-apiserver's EncryptionConfiguration: the
// same file on every control plane (enable, the key-rotation phases,
// identity first for disabling, removal), and each API server serving what
// the file says (reload).
type EncryptionConfig struct{}

// EncryptionConfigParams are encryption-config's parameters.
type EncryptionConfigParams struct {
	Action    string        `yaml:"action" required:"true" doc:"file actions, on every host of hosts at once: prepare, enable, add-key, promote-key, prune-keys, identity-first, remove; reload: this host's kube-apiserver"`
	Hosts     []string      `yaml:"hosts" doc:"file actions: the control-plane hosts that hold the identical file (the step's own host among them)"`
	Path      string        `yaml:"path" default:"/etc/kubernetes/enc/encryption-config.yaml" doc:"where the file is (reload reads it from the --encryption-provider-config flag)"`
	Provider  string        `yaml:"provider" default:"aescbc" doc:"enable: aescbc, aesgcm or secretbox"`
	Resources []string      `yaml:"resources" default:"[secrets]" doc:"enable: the resources to encrypt (e.g. secrets, configmaps)"`
	Timeout   time.Duration `yaml:"timeout" default:"3m" doc:"reload: bound on the kube-apiserver's stop and its return to health"`
}

var (
	encFileActions = []string{"prepare", "enable", "add-key", "promote-key", "prune-keys", "identity-first", "remove"}
	keyedProviders = []string{"aescbc", "aesgcm", "secretbox"}
)

// Validate checks the parameters.
func (p *EncryptionConfigParams) Validate() error {
	if err := absPath("path", p.Path); err != nil {
		return err
	}
	if !slices.Contains(keyedProviders, p.Provider) {
		return fmt.Errorf("provider %q: want one of %s", p.Provider, strings.Join(keyedProviders, ", "))
	}
	if len(p.Resources) == 0 {
		return errors.New("resources: at least one resource")
	}
	if p.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	switch {
	case p.Action == "reload":
	case slices.Contains(encFileActions, p.Action):
		if len(p.Hosts) == 0 {
			return fmt.Errorf("action %s: hosts is required (every control plane)", p.Action)
		}
	default:
		return fmt.Errorf("action %q: want reload or one of %s", p.Action, strings.Join(encFileActions, ", "))
	}
	return nil
}

// spec is what the file action needs of the params.
func (p *EncryptionConfigParams) spec() encconfig.Spec {
	return encconfig.Spec{Action: p.Action, Provider: p.Provider, Resources: p.Resources}
}

// ErrEncryptionConfig is returned when the hosts' files cannot be brought
// to the action's state safely (they disagree, or hold a configuration the
// action does not know how to change).
var ErrEncryptionConfig = errors.New("encryption configuration refused")

// ErrNotLoaded is returned when a kube-apiserver still serves another
// encryption configuration than its file after a restart.
var ErrNotLoaded = errors.New("encryption configuration not loaded")

func (EncryptionConfig) Name() string { return "encryption-config" }
func (EncryptionConfig) Doc() string {
	return "Keep the kube-apiserver's EncryptionConfiguration (encryption at rest). File actions act on every host of hosts at once and leave the identical file (0600) on each: enable (a new 32-byte key generated on the runner, provider first, identity kept as the read fallback), add-key (a new key as the provider's last key: read, not yet written), promote-key (the newest kubeplay key first: new writes use it), prune-keys (keep only each provider's first key; rewrite and verify before), identity-first (new writes are plaintext again, keys kept for reading) and remove (refused while a kube-apiserver manifest names the file). Files left different by an interrupted run are completed from the host already in the action's state. reload makes this host's kube-apiserver serve its file: the configuration hash the server reports (apiserver_encryption_config_controller_last_config_info) is compared with the file's, the server restarted through its manifest when they differ, and checked again. Keys never reach logs, diffs, registered data or command lines; data gives the provider and key names new writes use and the file's sha256."
}
func (EncryptionConfig) NewParams() Params { return &EncryptionConfigParams{} }

// hostFile is one host's copy of the file.
type hostFile struct {
	host    string
	conn    Conn
	content string
	cfg     *encconfig.Config
}

// encPlan is what a file action does: the content every host ends with,
// and the hosts whose file changes.
type encPlan struct {
	cfg     *encconfig.Config
	content string
	writes  []string
}

// plan reads every host's file and decides the content they all end with.
// Identical files are transformed. Files an interrupted run left different
// are completed from the one already in the action's state; anything else
// is refused, naming the hosts.
func (p *EncryptionConfigParams) plan(ctx context.Context, t *Target) ([]*hostFile, *encPlan, error) {
	files, err := p.readAll(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	gen := &encconfig.KeyGen{Now: t.Clock.Now()}
	distinct := map[string][]string{}
	for _, f := range files {
		distinct[f.content] = append(distinct[f.content], f.host)
	}
	var target *encconfig.Config
	if len(distinct) == 1 {
		next, err := encconfig.Transform(files[0].cfg, p.spec(), gen)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrEncryptionConfig, err)
		}
		target = next
	} else {
		var settled []*hostFile
		for _, f := range files {
			next, err := encconfig.Transform(f.cfg, p.spec(), gen)
			if err == nil && next == f.cfg && f.cfg != nil && !slices.ContainsFunc(settled, func(s *hostFile) bool { return s.content == f.content }) {
				settled = append(settled, f)
			}
		}
		if len(settled) != 1 {
			var groups []string
			for _, hosts := range distinct {
				groups = append(groups, "["+strings.Join(hosts, " ")+"]")
			}
			sort.Strings(groups)
			return nil, nil, fmt.Errorf("%w: the hosts hold different files (%s) and not exactly one of them is already %s; make them identical first",
				ErrEncryptionConfig, strings.Join(groups, " "), p.Action)
		}
		target = settled[0].cfg
	}
	pl := &encPlan{cfg: target}
	if target == nil {
		// identity-first with no file anywhere: nothing is encrypted
		return files, pl, nil
	}
	if pl.content, err = target.Render(); err != nil {
		return nil, nil, fmt.Errorf("render %s: %w", p.Path, err)
	}
	for _, f := range files {
		if f.cfg == nil || !encconfig.Same(f.cfg, target) {
			pl.writes = append(pl.writes, f.host)
		}
	}
	return files, pl, nil
}

// readAll reads and parses the file on every host; a host that does not
// answer fails the step before anything is written.
func (p *EncryptionConfigParams) readAll(ctx context.Context, t *Target) ([]*hostFile, error) {
	files, err := p.readFiles(ctx, t)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.cfg, err = encconfig.Parse(f.content); err != nil {
			return nil, fmt.Errorf("%w: %s on %s: %w", ErrEncryptionConfig, p.Path, f.host, err)
		}
	}
	return files, nil
}

func (pl *encPlan) data(path string) map[string]any {
	prov, key := pl.cfg.WriteState()
	sum := ""
	if pl.cfg != nil {
		sum = fmt.Sprintf("%x", sha256.Sum256([]byte(pl.content)))
	}
	return map[string]any{"path": path, "written": pl.writes, "write_provider": prov, "write_key": key,
		"keys": pl.cfg.KeyNames(), "sha256": sum}
}

// Check says what the action would change; reload says whether the server
// would restart.
func (EncryptionConfig) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	ep := p.(*EncryptionConfigParams)
	switch ep.Action {
	case "reload":
		st, err := ep.served(ctx, t)
		if err != nil {
			return Result{}, err
		}
		return st.result(false), nil
	case "remove":
		return ep.remove(ctx, t, false)
	}
	_, pl, err := ep.plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	res := Result{Changed: len(pl.writes) > 0, Data: pl.data(ep.Path)}
	res.Msg = fmt.Sprintf("%s: unchanged on %d host(s)", ep.Action, len(ep.Hosts))
	if res.Changed {
		res.Msg = fmt.Sprintf("%s: would write %s on %s", ep.Action, ep.Path, strings.Join(pl.writes, ", "))
	}
	return res, nil
}

// Run performs the action.
func (EncryptionConfig) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	ep := p.(*EncryptionConfigParams)
	switch ep.Action {
	case "reload":
		return ep.reload(ctx, t)
	case "remove":
		return ep.remove(ctx, t, true)
	}
	files, pl, err := ep.plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	for _, f := range files {
		if !slices.Contains(pl.writes, f.host) {
			continue
		}
		if _, err := runScript(ctx, f.conn, `install -d -m 0700 -- "$1"`, path.Dir(ep.Path)); err != nil {
			return Result{Changed: f.host != pl.writes[0]}, fmt.Errorf("host %s: create %s: %w", f.host, path.Dir(ep.Path), err)
		}
		if _, err := writeFileAtomic(ctx, f.conn, ep.Path, pl.content, false, t.Clock.Now(), fileAttrs{Mode: "0600"}); err != nil {
			// the hosts written so far are in the action's state: a rerun
			// completes the others from them
			return Result{Changed: f.host != pl.writes[0]}, fmt.Errorf("host %s: %w", f.host, err)
		}
	}
	res := Result{Changed: len(pl.writes) > 0, Data: pl.data(ep.Path)}
	prov, key := pl.cfg.WriteState()
	res.Msg = fmt.Sprintf("%s: %s unchanged on %d host(s); new writes use %s %s", ep.Action, ep.Path, len(ep.Hosts), prov, key)
	if res.Changed {
		res.Msg = fmt.Sprintf("%s: wrote %s on %s; new writes use %s %s", ep.Action, ep.Path, strings.Join(pl.writes, ", "), prov, key)
	}
	return res, nil
}

// remove deletes the file on every host, refused while any host's
// kube-apiserver manifest still names it (the server would not start).
func (p *EncryptionConfigParams) remove(ctx context.Context, t *Target, apply bool) (Result, error) {
	files, err := p.readFiles(ctx, t)
	if err != nil {
		return Result{}, err
	}
	var gone []string
	for _, f := range files {
		flags, err := apiserverFlags(ctx, f.conn)
		if err != nil {
			return Result{}, fmt.Errorf("host %s: %w", f.host, err)
		}
		if flags["encryption-provider-config"] == p.Path {
			return Result{}, fmt.Errorf("%w: the kube-apiserver manifest on %s still names %s (remove the flag first)", ErrEncryptionConfig, f.host, p.Path)
		}
		if f.content != "" {
			gone = append(gone, f.host)
		}
	}
	res := Result{Changed: len(gone) > 0, Msg: fmt.Sprintf("%s is on no host", p.Path), Data: map[string]any{"path": p.Path, "removed": gone}}
	if !apply {
		if res.Changed {
			res.Msg = fmt.Sprintf("would remove %s on %s", p.Path, strings.Join(gone, ", "))
		}
		return res, nil
	}
	for _, f := range files {
		if !slices.Contains(gone, f.host) {
			continue
		}
		if _, err := runScript(ctx, f.conn, `rm -f -- "$1"`, p.Path); err != nil {
			return Result{Changed: f.host != gone[0]}, fmt.Errorf("host %s: remove %s: %w", f.host, p.Path, err)
		}
	}
	if res.Changed {
		res.Msg = fmt.Sprintf("removed %s on %s", p.Path, strings.Join(gone, ", "))
	}
	return res, nil
}

// readFiles reads the file on every host without interpreting it.
func (p *EncryptionConfigParams) readFiles(ctx context.Context, t *Target) ([]*hostFile, error) {
	if !slices.Contains(p.Hosts, t.Host.Name) {
		return nil, fmt.Errorf("%w: hosts must include the step's own host %s", ErrEncryptionConfig, t.Host.Name)
	}
	var out []*hostFile
	for _, h := range p.Hosts {
		conn, err := peerConn(ctx, t, h)
		if err != nil {
			return nil, err
		}
		content, _, err := readFile(ctx, conn, p.Path)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h, err)
		}
		out = append(out, &hostFile{host: h, conn: conn, content: content})
	}
	return out, nil
}

// peerConn is the step's own connection for its host, a peer's otherwise.
func peerConn(ctx context.Context, t *Target, h string) (Conn, error) {
	if h == t.Host.Name {
		return t.Conn, nil
	}
	if t.Peers == nil {
		return nil, errors.New("this step reaches other hosts and runs only in a runner")
	}
	c, err := t.Peers.Conn(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h, err)
	}
	return c, nil
}

// apiserverFlags reads the flags of the host's kube-apiserver manifest
// (none when the host has no manifest).
func apiserverFlags(ctx context.Context, c Conn) (map[string]string, error) {
	m, ok, err := readFile(ctx, c, manifestDir+"/kube-apiserver.yaml")
	if err != nil || !ok {
		return map[string]string{}, err
	}
	return podFlags(m, "kube-apiserver")
}

// servedState compares what a kube-apiserver serves with its file.
type servedState struct {
	host     string
	path     string // from --encryption-provider-config; "" when unset
	fileHash string
	served   string // "" when unknown (the server did not answer)
}

func (s servedState) result(restarted bool) Result {
	data := map[string]any{"path": s.path, "file_hash": s.fileHash, "served_hash": s.served, "restarted": restarted}
	switch {
	case s.path == "":
		return Result{Msg: "kube-apiserver on " + s.host + " has no --encryption-provider-config", Data: data}
	case restarted:
		return Result{Changed: true, Msg: "restarted kube-apiserver on " + s.host + ": it serves " + s.path + " (" + s.fileHash + ")", Data: data}
	case s.served == s.fileHash:
		return Result{Msg: "kube-apiserver on " + s.host + " serves " + s.path + " (" + s.fileHash + ")", Data: data}
	}
	return Result{Changed: true, Msg: "would restart kube-apiserver on " + s.host + ": it serves " + orUnknown(s.served) + ", the file is " + s.fileHash, Data: data}
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown configuration"
	}
	return s
}

// served reads the host's configured file and the configuration hash its
// kube-apiserver reports.
func (p *EncryptionConfigParams) served(ctx context.Context, t *Target) (servedState, error) {
	st := servedState{host: t.Host.Name}
	flags, err := apiserverFlags(ctx, t.Conn)
	if err != nil {
		return st, fmt.Errorf("read the kube-apiserver manifest: %w", err)
	}
	st.path = flags["encryption-provider-config"]
	if st.path == "" {
		return st, nil
	}
	content, ok, err := readFile(ctx, t.Conn, st.path)
	if err != nil {
		return st, err
	}
	if !ok {
		return st, fmt.Errorf("%w: the kube-apiserver manifest on %s names %s, which is not there", ErrEncryptionConfig, t.Host.Name, st.path)
	}
	// the API server's own hash: sha256 of the file's bytes
	st.fileHash = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(content)))
	st.served, err = servedConfigHash(ctx, t)
	if err != nil {
		// a server that does not answer is restarted like a stale one
		t.Log.Debug("read the served encryption configuration", zap.Error(err))
		st.served = ""
	}
	return st, nil
}

// reload restarts the host's kube-apiserver when it serves another
// configuration than its file, and checks it serves the file after.
func (p *EncryptionConfigParams) reload(ctx context.Context, t *Target) (Result, error) {
	st, err := p.served(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if st.path == "" || st.served == st.fileHash {
		return st.result(false), nil
	}
	tun, ok := t.Conn.(transport.Dialer)
	if !ok {
		return Result{}, errors.New("reload needs an SSH (or local) connection")
	}
	w := componentWait{Timeout: p.Timeout, Interval: time.Second}
	if err := w.restart(ctx, t, tun, "kube-apiserver"); err != nil {
		return Result{Changed: true}, fmt.Errorf("restart kube-apiserver on %s: %w", t.Host.Name, err)
	}
	// /livez answers before the metrics do on a busy server: poll briefly
	err = w.until(ctx, t, "report the configuration "+st.fileHash, func(ctx context.Context) bool {
		st.served, _ = servedConfigHash(ctx, t)
		return st.served == st.fileHash
	})
	if err != nil {
		return Result{Changed: true}, fmt.Errorf("%w: kube-apiserver on %s serves %s after a restart, the file is %s", ErrNotLoaded, t.Host.Name, orUnknown(st.served), st.fileHash)
	}
	return st.result(true), nil
}

const lastConfigMetric = "apiserver_encryption_config_controller_last_config_info"

// servedConfigHash asks this host's kube-apiserver (through the host, with
// the run's credentials) which encryption configuration it loaded.
func servedConfigHash(ctx context.Context, t *Target) (string, error) {
	tun, ok := t.Conn.(transport.Dialer)
	if !ok || t.KubeConfig == nil {
		return "", errors.New("needs an SSH connection and the run's kubeconfig")
	}
	rc := rest.CopyConfig(t.KubeConfig)
	rc.Host = "https://" + staticPodHealth["kube-apiserver"].addr
	// every kubeadm API server certificate names "kubernetes"
	rc.TLSClientConfig.ServerName = "kubernetes"
	rc.Dial = tun.DialContext
	rc.Timeout = 10 * time.Second
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return "", err
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.Host+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseConfigHash(resp.Body)
}

var metricLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// parseConfigHash finds the hash label of the last-config metric in a
// Prometheus text exposition.
func parseConfigHash(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		labels, ok := strings.CutPrefix(sc.Text(), lastConfigMetric+"{")
		if !ok {
			continue
		}
		labels, _, _ = strings.Cut(labels, "}")
		for _, m := range metricLabel.FindAllStringSubmatch(labels, -1) {
			if m[1] == "hash" {
				return m[2], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("the server reports no encryption configuration")
}
