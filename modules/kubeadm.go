package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kubeadm runs the kubeadm upgrade commands of seed 1.4/1.5 on a node, with
// the checks an operator does around them.
type Kubeadm struct{}

// KubeadmParams are kubeadm's parameters.
type KubeadmParams struct {
	Action  string `yaml:"action" required:"true" doc:"upgrade-plan, upgrade-apply (the first control plane), upgrade-node (every other node), upgrade-node-phase (e.g. phase kubelet-config), init-phase (e.g. phase \"control-plane apiserver\" with config), certs-renew or certs-check-expiration (read-only, parsed from kubeadm's JSON)"`
	Phase   string `yaml:"phase" doc:"init-phase / upgrade-node-phase: the phase words, e.g. \"control-plane apiserver\", \"certs apiserver\", kubelet-config"`
	Config  string `yaml:"config" doc:"init-phase: a kubeadm configuration file on the host (--config)"`
	Version string `yaml:"version" doc:"target version, 1.37.2 or v1.37.2: required for upgrade-apply; for upgrade-node it lets a control plane already at it be skipped"`
	// kubeadm's own flags
	IgnorePreflightErrors []string `yaml:"ignore_preflight_errors" doc:"preflight checks to downgrade to warnings (--ignore-preflight-errors)"`
	EtcdUpgrade           *bool    `yaml:"etcd_upgrade" default:"true" doc:"also upgrade the local etcd member (--etcd-upgrade)"`
	Force                 bool     `yaml:"force" doc:"upgrade-apply: run even when the node is already at the version, with kubeadm's --force (the docs' recovery for a bad state)"`
	Certs                 []string `yaml:"certs" doc:"certs-renew: which certificates (kubeadm certs renew NAME), default [all]"`
}

var (
	kubeadmActions   = []string{"upgrade-plan", "upgrade-apply", "upgrade-node", "upgrade-node-phase", "init-phase", "certs-renew", "certs-check-expiration"}
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
	if p.Config != "" && p.Action != "init-phase" {
		return errors.New("config applies to init-phase only")
	}
	if p.Config != "" && !strings.HasPrefix(p.Config, "/") {
		return fmt.Errorf("config %q is not an absolute path", p.Config)
	}
	if p.Action == "upgrade-apply" && p.Version == "" {
		return errors.New("upgrade-apply needs version")
	}
	if p.Force && p.Action != "upgrade-apply" {
		return errors.New("force applies to upgrade-apply only")
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

// ErrKubeadm marks a kubeadm run that did not report success.
var ErrKubeadm = errors.New("kubeadm failed")

func (Kubeadm) Name() string { return "kubeadm" }
func (Kubeadm) Doc() string {
	return "Run kubeadm upgrade plan, upgrade apply (first control plane), upgrade node (other control planes and workers) or certs renew. Before apply, the installed kubeadm must be the target version. A control plane whose static pod manifests already run the target version is left alone (unless force). Changed is whether the manifests, kubeconfigs or kubelet config actually changed; register exposes stdout and kubeadm's backup directories (backups) for manual recovery."
}
func (Kubeadm) NewParams() Params { return &KubeadmParams{} }

func (p *KubeadmParams) argv() []string {
	if p.Action == "certs-check-expiration" {
		return []string{"kubeadm", "certs", "check-expiration", "-o", "json"}
	}
	switch p.Action {
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
	if p.Action != "upgrade-plan" && p.EtcdUpgrade != nil && !*p.EtcdUpgrade {
		a = append(a, "--etcd-upgrade=false")
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
	r, err := run(ctx, c, kubeadmStateScript)
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
	if kp.Action == "upgrade-plan" || kp.Action == "certs-check-expiration" {
		return m.Run(ctx, t, p)
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
	if kp.Action == "certs-check-expiration" {
		return checkExpiration(ctx, t, kp)
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
		if _, err := run(ctx, t.Conn, `while [ -e "/etc/kubernetes/tmp/kubeadm-kubelet-config-$(date +%Y-%m-%d-%H-%M-%S)" ]; do sleep 0.2; done`); err != nil {
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
