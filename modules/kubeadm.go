package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeplay/kubeplay/secret"
)

// Kubeadm runs the kubeadm upgrade commands of seed 1.4/1.5 on a node, with
// the checks an operator does around them.
type Kubeadm struct{}

// KubeadmParams are kubeadm's parameters.
type KubeadmParams struct {
	Action  string `yaml:"action" required:"true" doc:"upgrade-plan, upgrade-apply (the first control plane), upgrade-node (every other node), upgrade-node-phase (e.g. phase kubelet-config), init-phase (e.g. phase \"control-plane apiserver\" with config), certs-renew, certs-check-expiration (read-only, parsed from kubeadm's JSON), kubeconfig-user (a user's kubeconfig written to dest on the host) or token-create (a bootstrap token, registered as a secret)"`
	Phase   string `yaml:"phase" doc:"init-phase / upgrade-node-phase: the phase words, e.g. \"control-plane apiserver\", \"certs apiserver\", kubelet-config"`
	Config  string `yaml:"config" doc:"init-phase, kubeconfig-user: a kubeadm configuration file on the host (--config); kubeconfig-user defaults to the cluster's ClusterConfiguration from kubeadm-config"`
	Version string `yaml:"version" doc:"target version, 1.37.2 or v1.37.2: required for upgrade-apply; for upgrade-node it lets a control plane already at it be skipped"`
	// kubeadm's own flags
	IgnorePreflightErrors []string `yaml:"ignore_preflight_errors" doc:"preflight checks to downgrade to warnings (--ignore-preflight-errors)"`
	EtcdUpgrade           bool     `yaml:"etcd_upgrade" default:"true" doc:"also upgrade the local etcd member (--etcd-upgrade)"`
	CertificateRenewal    bool     `yaml:"certificate_renewal" default:"true" doc:"upgrade-apply, upgrade-node: renew the certificates kubeadm manages on the way (--certificate-renewal); false keeps them, and their expiry"`
	Force                 bool     `yaml:"force" doc:"upgrade-apply: run even when the node is already at the version, with kubeadm's --force (the docs' recovery for a bad state)"`
	Certs                 []string `yaml:"certs" doc:"certs-renew: which certificates (kubeadm certs renew NAME), default [all]"`
	// kubeconfig-user
	ClientName     string        `yaml:"client_name" doc:"kubeconfig-user: the user (certificate CN)"`
	Org            []string      `yaml:"org" doc:"kubeconfig-user: the user's groups (certificate O)"`
	ValidityPeriod time.Duration `yaml:"validity_period" doc:"kubeconfig-user: the certificate's validity (kubeadm's default when unset)"`
	Dest           string        `yaml:"dest" doc:"kubeconfig-user: where the kubeconfig goes on the host (0600); an existing file is kept unless force"`
	// token-create
	TTL              time.Duration `yaml:"ttl" doc:"token-create: the token's lifetime (kubeadm's default, 24h, when unset)"`
	Description      string        `yaml:"description" doc:"token-create: a human-readable description"`
	PrintJoinCommand bool          `yaml:"print_join_command" doc:"token-create: also register the full kubeadm join command (a secret, like the token)"`
}

var (
	kubeadmActions   = []string{"upgrade-plan", "upgrade-apply", "upgrade-node", "upgrade-node-phase", "init-phase", "certs-renew", "certs-check-expiration", "kubeconfig-user", "token-create"}
	userNameRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:@._-]*$`)
	phaseWordRE      = regexp.MustCompile(`^[a-z][a-z0-9-]*(/[a-z0-9-]+)?$`)
	kubeVersionRE    = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	preflightCheckRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	certNameRE       = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	kubeadmBackupRE  = regexp.MustCompile(`/etc/kubernetes/tmp/kubeadm-backup-(manifests|etcd)-[0-9-]+`)
)

// Validate checks the parameters.
func (p *KubeadmParams) Validate() error {
	if !slices.Contains(kubeadmActions, p.Action) {
		return fmt.Errorf("action %q: one of %s", p.Action, strings.Join(kubeadmActions, ", "))
	}
	if p.Version != "" {
		if !kubeVersionRE.MatchString(p.Version) {
			return fmt.Errorf("version %q is not a Kubernetes version", p.Version)
		}
		p.Version = "v" + strings.TrimPrefix(p.Version, "v")
	}
	phased := p.Action == "init-phase" || p.Action == "upgrade-node-phase"
	if phased != (p.Phase != "") {
		return errors.New("phase goes with init-phase and upgrade-node-phase, and they need it")
	}
	for _, w := range strings.Fields(p.Phase) {
		if !phaseWordRE.MatchString(w) {
			return fmt.Errorf("phase: %q is not a phase name", w)
		}
	}
	if p.Config != "" && p.Action != "init-phase" && p.Action != "kubeconfig-user" {
		return errors.New("config applies to init-phase and kubeconfig-user only")
	}
	if err := p.validateCredentials(); err != nil {
		return err
	}
	if p.Config != "" && !strings.HasPrefix(p.Config, "/") {
		return fmt.Errorf("config %q is not an absolute path", p.Config)
	}
	if p.Action == "upgrade-apply" && p.Version == "" {
		return errors.New("upgrade-apply needs version")
	}
	if p.Force && p.Action != "upgrade-apply" && p.Action != "kubeconfig-user" {
		return errors.New("force applies to upgrade-apply and kubeconfig-user only")
	}
	if len(p.Certs) > 0 && p.Action != "certs-renew" {
		return errors.New("certs applies to certs-renew only")
	}
	for _, c := range p.Certs {
		if !certNameRE.MatchString(c) {
			return fmt.Errorf("certs: %q is not a certificate name", c)
		}
	}
	for _, c := range p.IgnorePreflightErrors {
		if !preflightCheckRE.MatchString(c) {
			return fmt.Errorf("ignore_preflight_errors: %q is not a check name", c)
		}
	}
	return nil
}

// validateCredentials checks the parameters of the actions that make
// credentials.
func (p *KubeadmParams) validateCredentials() error {
	user := p.ClientName != "" || len(p.Org) > 0 || p.ValidityPeriod != 0 || p.Dest != ""
	token := p.TTL != 0 || p.Description != "" || p.PrintJoinCommand
	switch {
	case user && p.Action != "kubeconfig-user":
		return errors.New("client_name, org, validity_period and dest apply to kubeconfig-user only")
	case token && p.Action != "token-create":
		return errors.New("ttl, description and print_join_command apply to token-create only")
	case p.Action == "kubeconfig-user":
		if p.ClientName == "" || p.Dest == "" {
			return errors.New("kubeconfig-user needs client_name and dest")
		}
		for _, n := range append([]string{p.ClientName}, p.Org...) {
			if !userNameRE.MatchString(n) {
				return fmt.Errorf("client_name/org: %q is not a user or group name", n)
			}
		}
		if err := absPath("dest", p.Dest); err != nil {
			return err
		}
	}
	if p.ValidityPeriod < 0 || p.TTL < 0 {
		return errors.New("validity_period and ttl must be positive")
	}
	if strings.ContainsAny(p.Description, "\n\x00") {
		return errors.New("description: one line")
	}
	return nil
}

// ErrKubeadm marks a kubeadm run that did not report success.
var ErrKubeadm = errors.New("kubeadm failed")

func (Kubeadm) Name() string { return "kubeadm" }
func (Kubeadm) Doc() string {
	return "Run kubeadm: upgrade plan, upgrade apply (first control plane), upgrade node (other control planes and workers), upgrade node phase, init phase, certs renew, certs check-expiration (parsed), kubeconfig user or token create. Before apply, the installed kubeadm must be the target version. A control plane whose static pod manifests already run the target version is left alone (unless force). Changed is whether the manifests, kubeconfigs or kubelet config actually changed; register exposes stdout and kubeadm's backup directories (backups) for manual recovery. kubeconfig-user writes the user's kubeconfig straight to dest on the host (0600; the key never reaches the runner); token-create registers token and join_command as secrets, shown redacted everywhere, and token_id and ca_cert_hash in the clear."
}
func (Kubeadm) NewParams() Params { return &KubeadmParams{} }

func (p *KubeadmParams) argv() []string {
	switch p.Action {
	case "certs-check-expiration":
		return []string{"kubeadm", "certs", "check-expiration", "-o", "json"}
	case "kubeconfig-user":
		a := []string{"kubeadm", "kubeconfig", "user", "--client-name", p.ClientName}
		for _, o := range p.Org {
			a = append(a, "--org", o)
		}
		if p.ValidityPeriod > 0 {
			a = append(a, "--validity-period", p.ValidityPeriod.String())
		}
		return a
	case "token-create":
		a := []string{"kubeadm", "token", "create"}
		if p.TTL > 0 {
			a = append(a, "--ttl", p.TTL.String())
		}
		if p.Description != "" {
			a = append(a, "--description", p.Description)
		}
		if p.PrintJoinCommand {
			a = append(a, "--print-join-command")
		}
		return a
	case "init-phase":
		a := append([]string{"kubeadm", "init", "phase"}, strings.Fields(p.Phase)...)
		if p.Config != "" {
			a = append(a, "--config", p.Config)
		}
		return a
	case "upgrade-node-phase":
		return append([]string{"kubeadm", "upgrade", "node", "phase"}, strings.Fields(p.Phase)...)
	}
	if p.Action == "certs-renew" {
		certs := p.Certs
		if len(certs) == 0 {
			certs = []string{"all"}
		}
		return append([]string{"kubeadm", "certs", "renew"}, certs...)
	}
	a := []string{"kubeadm", "upgrade"}
	switch p.Action {
	case "upgrade-plan":
		a = append(a, "plan")
		if p.Version != "" {
			a = append(a, p.Version)
		}
	case "upgrade-apply":
		a = append(a, "apply", p.Version, "--yes")
		if p.Force {
			a = append(a, "--force")
		}
	case "upgrade-node":
		a = append(a, "node")
	}
	if len(p.IgnorePreflightErrors) > 0 {
		a = append(a, "--ignore-preflight-errors="+strings.Join(p.IgnorePreflightErrors, ","))
	}
	if p.Action != "upgrade-plan" && !p.EtcdUpgrade {
		a = append(a, "--etcd-upgrade=false")
	}
	if p.Action != "upgrade-plan" && !p.CertificateRenewal {
		a = append(a, "--certificate-renewal=false")
	}
	return a
}

// kubeadmState is one round trip: the kubeadm binary's version, the image
// tags of the local control-plane manifests, and a fingerprint of every file
// kubeadm upgrade may rewrite.
const kubeadmStateScript = `echo "kubeadm=$(kubeadm version -o short 2>/dev/null)"
for f in /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/kube-controller-manager.yaml /etc/kubernetes/manifests/kube-scheduler.yaml; do
  [ -f "$f" ] && echo "image=$(sed -n 's/^ *image: *//p' "$f" | head -1)"
done
echo "fingerprint=$(cat /etc/kubernetes/manifests/*.yaml /etc/kubernetes/*.conf /etc/kubernetes/pki/*.crt /etc/kubernetes/pki/etcd/*.crt /var/lib/kubelet/config.yaml 2>/dev/null | sha256sum | cut -c1-64)"`

type kubeadmState struct {
	kubeadm     string
	images      []string
	fingerprint string
}

func (s kubeadmState) controlPlane() bool { return len(s.images) > 0 }

// atVersion: every control-plane manifest runs an image tagged v.
func (s kubeadmState) atVersion(v string) bool {
	if v == "" || !s.controlPlane() {
		return false
	}
	for _, img := range s.images {
		if !strings.HasSuffix(img, ":"+v) {
			return false
		}
	}
	return true
}

func readKubeadmState(ctx context.Context, c Conn) (kubeadmState, error) {
	r, err := runScript(ctx, c, kubeadmStateScript)
	if err != nil {
		return kubeadmState{}, fmt.Errorf("read kubeadm state: %w", err)
	}
	var s kubeadmState
	for _, line := range strings.Split(r.Stdout, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "kubeadm":
			s.kubeadm = strings.TrimSpace(v)
		case "image":
			s.images = append(s.images, strings.TrimSpace(v))
		case "fingerprint":
			s.fingerprint = strings.TrimSpace(v)
		}
	}
	return s, nil
}

// skip says why the step has nothing to do on this node.
func (p *KubeadmParams) skip(s kubeadmState) string {
	if p.Action != "upgrade-apply" && p.Action != "upgrade-node" || p.Force {
		return ""
	}
	if s.atVersion(p.Version) {
		return "control plane already runs " + p.Version
	}
	return ""
}

// Check reports what Run would do; upgrade-plan, which only reads, runs.
func (m Kubeadm) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	kp := p.(*KubeadmParams)
	switch kp.Action {
	case "upgrade-plan", "certs-check-expiration":
		return m.Run(ctx, t, p)
	case "kubeconfig-user":
		return kubeconfigUser(ctx, t, kp)
	case "token-create":
		return Result{Changed: true, Msg: "would run " + strings.Join(kp.argv(), " ")}, nil
	}
	s, err := readKubeadmState(ctx, t.Conn)
	if err != nil {
		return Result{}, err
	}
	if why := kp.skip(s); why != "" {
		return Result{Msg: why}, nil
	}
	return Result{Changed: true, Msg: "would run " + strings.Join(kp.argv(), " ")}, nil
}

// Run runs kubeadm.
func (Kubeadm) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	kp := p.(*KubeadmParams)
	switch kp.Action {
	case "certs-check-expiration":
		return checkExpiration(ctx, t, kp)
	case "kubeconfig-user":
		return kubeconfigUser(ctx, t, kp)
	case "token-create":
		return tokenCreate(ctx, t, kp)
	}
	before, err := readKubeadmState(ctx, t.Conn)
	if err != nil {
		return Result{}, err
	}
	if why := kp.skip(before); why != "" {
		return Result{Msg: why, Data: map[string]any{"backups": []string{}, "stdout": ""}}, nil
	}
	if kp.Action == "upgrade-apply" && before.kubeadm != kp.Version {
		return Result{}, fmt.Errorf("%w: kubeadm on %s is %q, upgrade apply %s needs kubeadm %s installed first (apt-pin)",
			ErrKubeadm, t.Host.Name, before.kubeadm, kp.Version, kp.Version)
	}
	argv := kp.argv()
	if kp.Action == "upgrade-node-phase" {
		// kubeadm backs the kubelet config up into a directory named after
		// the current second, and fails if it exists: never start in the
		// same second as a previous run
		if _, err := runScript(ctx, t.Conn, `while [ -e "/etc/kubernetes/tmp/kubeadm-kubelet-config-$(date +%Y-%m-%d-%H-%M-%S)" ]; do sleep 0.2; done`); err != nil {
			return Result{}, err
		}
	}
	r, err := t.Conn.Exec(ctx, Cmd{Argv: argv})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	res := Result{Stdout: r.Stdout, Stderr: r.Stderr, RC: r.RC, Data: map[string]any{
		"stdout":  r.Stdout,
		"backups": kubeadmBackupRE.FindAllString(r.Stdout+r.Stderr, -1),
	}}
	if r.RC != 0 {
		return res, fmt.Errorf("%s: %w: exit code %d: %s", strings.Join(argv, " "), ErrKubeadm, r.RC, kubeadmError(r))
	}
	if kp.Action == "upgrade-plan" {
		res.Msg = "kubeadm upgrade plan"
		return res, nil
	}
	if kp.Action == "upgrade-apply" && !(strings.Contains(r.Stdout, "SUCCESS!") && strings.Contains(r.Stdout, kp.Version)) {
		return res, fmt.Errorf("%w: kubeadm upgrade apply exited 0 without reporting SUCCESS for %s", ErrKubeadm, kp.Version)
	}
	after, err := readKubeadmState(ctx, t.Conn)
	if err != nil {
		return res, err
	}
	if kp.Version != "" && after.controlPlane() && !after.atVersion(kp.Version) {
		return res, fmt.Errorf("%w: after %s the manifests on %s run %v, not %s", ErrKubeadm, kp.Action, t.Host.Name, after.images, kp.Version)
	}
	res.Changed = after.fingerprint != before.fingerprint
	n := 3
	if kp.Phase != "" {
		n = slices.Index(argv, "phase") + 1 + len(strings.Fields(kp.Phase))
	}
	res.Msg = strings.Join(argv[:n], " ")
	if !res.Changed {
		res.Msg += ": nothing changed"
	}
	return res, nil
}

// expirationInfo is kubeadm's CertificateExpirationInfo (output.kubeadm.k8s.io).
type expirationInfo struct {
	Kind         string `json:"kind"`
	Certificates []struct {
		Name              string    `json:"name"`
		ExpirationDate    time.Time `json:"expirationDate"`
		ResidualTime      int64     `json:"residualTime"` // seconds
		ExternallyManaged bool      `json:"externallyManaged"`
		CAName            string    `json:"caName"`
		Missing           bool      `json:"missing"`
	} `json:"certificates"`
	CertificateAuthorities []struct {
		Name              string    `json:"name"`
		ExpirationDate    time.Time `json:"expirationDate"`
		ResidualTime      int64     `json:"residualTime"`
		ExternallyManaged bool      `json:"externallyManaged"`
	} `json:"certificateAuthorities"`
}

// checkExpiration runs kubeadm certs check-expiration -o json and exposes
// each certificate and CA with its residual time.
func checkExpiration(ctx context.Context, t *Target, kp *KubeadmParams) (Result, error) {
	argv := kp.argv()
	r, err := t.Conn.Exec(ctx, Cmd{Argv: argv})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	if r.RC != 0 {
		return Result{}, fmt.Errorf("%s: %w: exit code %d: %s", strings.Join(argv, " "), ErrKubeadm, r.RC, lastLine(r.Stderr, r.Stdout))
	}
	var info expirationInfo
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil || info.Kind != "CertificateExpirationInfo" {
		return Result{}, fmt.Errorf("%w: check-expiration output is not a CertificateExpirationInfo: %v", ErrKubeadm, err)
	}
	var certs, cas []any
	minLeft := int64(-1)
	soonest := ""
	for _, c := range info.Certificates {
		certs = append(certs, map[string]any{"name": c.Name, "expires": c.ExpirationDate.Format(time.RFC3339), "residual_seconds": c.ResidualTime,
			"ca": c.CAName, "missing": c.Missing, "external": c.ExternallyManaged})
		if !c.Missing && (minLeft < 0 || c.ResidualTime < minLeft) {
			minLeft, soonest = c.ResidualTime, c.Name
		}
	}
	for _, c := range info.CertificateAuthorities {
		cas = append(cas, map[string]any{"name": c.Name, "expires": c.ExpirationDate.Format(time.RFC3339), "residual_seconds": c.ResidualTime, "external": c.ExternallyManaged})
	}
	return Result{Msg: fmt.Sprintf("%d certificates, %d CAs; soonest: %s in %s", len(certs), len(cas), soonest, (time.Duration(minLeft) * time.Second).Round(time.Hour)),
		Data: map[string]any{"certificates": certs, "cas": cas, "min_residual_seconds": minLeft, "soonest": soonest}}, nil
}

// kubeadmError is the line of kubeadm's output that says what went wrong
// (kubeadm ends with a line about --v=5 instead).
func kubeadmError(r ExecResult) string {
	for _, out := range []string{r.Stderr, r.Stdout} {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(strings.TrimSpace(lines[i]), "error") {
				return strings.TrimSpace(lines[i])
			}
		}
	}
	return lastLine(r.Stderr, r.Stdout)
}

// kubeconfigUser has kubeadm write a user's kubeconfig (with its private
// key) straight into dest on the host: the credential never travels to the
// runner, its logs or its journal.
func kubeconfigUser(ctx context.Context, t *Target, kp *KubeadmParams) (Result, error) {
	data := map[string]any{"path": kp.Dest, "client_name": kp.ClientName, "org": kp.Org}
	st, err := statPath(ctx, t.Conn, kp.Dest)
	if err != nil {
		return Result{}, err
	}
	if st.Exists && !kp.Force {
		return Result{Msg: kp.Dest + " exists (force: true makes a new one)", Data: data}, nil
	}
	if t.Check {
		return Result{Changed: true, Msg: fmt.Sprintf("would write a kubeconfig for %s to %s", kp.ClientName, kp.Dest), Data: data}, nil
	}
	var stdin io.Reader
	if kp.Config == "" {
		if t.Kube == nil {
			return Result{}, errors.New("kubeconfig-user needs config, or the Kubernetes API to read the cluster's ClusterConfiguration from")
		}
		cm, err := t.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			return Result{}, fmt.Errorf("kubeadm-config: %w", err)
		}
		stdin = strings.NewReader(cm.Data["ClusterConfiguration"])
	}
	argv := kp.argv()
	script := `set -e
umask 077
cfg=$1; dest=$2; shift 2
tmp=$(mktemp "$dest.kubeplay-tmp.XXXXXX")
own=
trap 'rm -f "$tmp" $own' EXIT
if [ -z "$cfg" ]; then cfg=$(mktemp); own=$cfg; cat > "$cfg"; fi
"$@" --config "$cfg" > "$tmp"
grep -q client-key-data "$tmp"
chmod 0600 "$tmp"
mv -f "$tmp" "$dest"
trap - EXIT
rm -f $own`
	r, err := t.Conn.Exec(ctx, Cmd{Argv: append([]string{"/bin/sh", "-c", script, "kubeplay", kp.Config, kp.Dest}, argv...), Stdin: stdin})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	if r.RC != 0 {
		// stdout went to the file: only stderr can be shown
		return Result{Stderr: r.Stderr, RC: r.RC}, fmt.Errorf("%s: %w: exit code %d: %s", strings.Join(argv, " "), ErrKubeadm, r.RC, lastLine(r.Stderr))
	}
	return Result{Changed: true, Msg: fmt.Sprintf("wrote a kubeconfig for %s to %s", kp.ClientName, kp.Dest), Data: data}, nil
}

var (
	bootstrapTokenRE = regexp.MustCompile(`\b([a-z0-9]{6})\.[a-z0-9]{16}\b`)
	caCertHashRE     = regexp.MustCompile(`--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})`)
)

// tokenCreate creates a bootstrap token. The token (and the join command
// carrying it) are registered as secrets: a later step can pass them on,
// and every output shows them redacted. Its ID is public.
func tokenCreate(ctx context.Context, t *Target, kp *KubeadmParams) (Result, error) {
	argv := kp.argv()
	r, err := t.Conn.Exec(ctx, Cmd{Argv: argv})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	out := strings.TrimSpace(r.Stdout)
	if r.RC != 0 {
		return Result{Stderr: r.Stderr, RC: r.RC}, fmt.Errorf("%s: %w: exit code %d: %s", strings.Join(argv, " "), ErrKubeadm, r.RC, lastLine(r.Stderr))
	}
	m := bootstrapTokenRE.FindStringSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("%w: kubeadm token create printed no token", ErrKubeadm)
	}
	data := map[string]any{"token": secret.New(m[0]), "token_id": m[1]}
	if kp.PrintJoinCommand {
		data["join_command"] = secret.New(out)
		if h := caCertHashRE.FindStringSubmatch(out); h != nil {
			data["ca_cert_hash"] = h[1]
		}
	}
	return Result{Changed: true, Msg: "created bootstrap token " + m[1], Data: data}, nil
}
