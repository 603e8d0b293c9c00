package modules

import (
	"context"
	"fmt"
	"strings"
)

// Facts gathers what playbooks branch on: OS, package manager, init system,
// addresses, swap, and the installed and held versions of the kubeadm
// packages. They become facts.NAME for later steps of the host.
type Facts struct{}

// FactsParams are facts' parameters.
type FactsParams struct {
	Refresh bool `yaml:"refresh" doc:"gather again even if this host's facts were gathered earlier in the run (after package or OS changes)"`
}

// Validate checks the parameters.
func (p *FactsParams) Validate() error { return nil }

func (Facts) Name() string { return "facts" }
func (Facts) Doc() string {
	return "Gather host facts for later steps: os_family, os_version, pkg_manager (apt, dnf, yum, zypper), init (systemd or other), hostname, addresses, swap_on, and for kubeadm, kubelet and kubectl the installed version (<pkg>_version) and whether it is held (<pkg>_held). Gathered once per host per run: later facts steps reuse them unless refresh is set. Changes nothing."
}
func (Facts) NewParams() Params { return &FactsParams{} }

// one script, one round trip: key=value lines
const factsScript = `. /etc/os-release 2>/dev/null
echo "os_id=${ID:-unknown}"
echo "os_like=${ID_LIKE:-}"
echo "os_version=${VERSION_ID:-}"
for m in apt-get dnf yum zypper; do if command -v $m >/dev/null 2>&1; then echo "pkg_manager=${m%-get}"; break; fi; done
if command -v systemctl >/dev/null 2>&1; then echo init=systemd; else echo init=other; fi
echo "hostname=$(hostname)"
echo "addresses=$(hostname -I 2>/dev/null)"
swaps=$(awk 'NR>1' /proc/swaps 2>/dev/null | wc -l)
echo "swap_on=$([ "$swaps" -gt 0 ] && echo true || echo false)"
for p in kubeadm kubelet kubectl; do
  v=""
  if command -v dpkg-query >/dev/null 2>&1; then
    s=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$p" 2>/dev/null)
    case "$s" in ?i*) v=${s##* };; esac
  elif command -v rpm >/dev/null 2>&1; then
    v=$(rpm -q --qf '%{VERSION}-%{RELEASE}' "$p" 2>/dev/null) || v=""
  fi
  echo "${p}_version=$v"
done
if command -v apt-mark >/dev/null 2>&1; then echo "held=$(apt-mark showhold | tr '\n' ' ')"; fi`

// Run gathers the facts.
func (Facts) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	if _, done := t.Facts["os_family"]; done && !p.(*FactsParams).Refresh {
		return Result{Data: t.Facts, Msg: "gathered earlier in this run"}, nil
	}
	r, err := runScript(ctx, t.Conn, factsScript)
	if err != nil {
		return Result{}, fmt.Errorf("gather facts: %w", err)
	}
	raw := map[string]string{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			raw[k] = strings.TrimSpace(v)
		}
	}
	family := raw["os_id"]
	for _, like := range append([]string{raw["os_id"]}, strings.Fields(raw["os_like"])...) {
		if like == "debian" || like == "rhel" || like == "suse" || like == "fedora" {
			family = like
			break
		}
	}
	held := strings.Fields(raw["held"])
	isHeld := func(p string) bool {
		for _, h := range held {
			if h == p {
				return true
			}
		}
		return false
	}
	vars := map[string]any{
		"os_family":   family,
		"os_version":  raw["os_version"],
		"pkg_manager": raw["pkg_manager"],
		"init":        raw["init"],
		"hostname":    raw["hostname"],
		"addresses":   strings.Fields(raw["addresses"]),
		"swap_on":     raw["swap_on"] == "true",
	}
	for _, p := range []string{"kubeadm", "kubelet", "kubectl"} {
		vars[p+"_version"] = raw[p+"_version"]
		vars[p+"_held"] = isHeld(p)
	}
	return Result{Vars: vars, Data: vars, Msg: fmt.Sprintf("%s %s, %s, %s", family, raw["os_version"], raw["pkg_manager"], raw["init"])}, nil
}

// Check gathers too: reading facts changes nothing, and check runs need them.
func (f Facts) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return f.Run(ctx, t, p)
}
