package modules

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kubeplay/kubeplay/transport"
	"go.uber.org/zap"
)

// StaticPodRestart restarts control-plane static pods the way the docs do:
// move the manifest out of the kubelet's directory until the component
// stops, move it back, and wait for the component's health endpoint.
type StaticPodRestart struct{}

// StaticPodRestartParams are static-pod-restart's parameters.
type StaticPodRestartParams struct {
	Components []string      `yaml:"components" doc:"kube-apiserver, kube-controller-manager, kube-scheduler, etcd (default: those with a manifest, in that order)"`
	Timeout    time.Duration `yaml:"timeout" default:"3m" doc:"bound on each component's stop and on its return to health"`
	Interval   time.Duration `yaml:"interval" default:"1s" doc:"how often to probe"`
}

const (
	manifestDir = "/etc/kubernetes/manifests"
	parkDir     = "/etc/kubernetes/kubeplay-restart"
)

// health says where each component reports its health, on the node.
var staticPodHealth = map[string]struct {
	addr, path string
	tls        bool
}{
	"kube-apiserver":          {"127.0.0.1:6443", "/livez", true},
	"kube-controller-manager": {"127.0.0.1:10257", "/healthz", true},
	"kube-scheduler":          {"127.0.0.1:10259", "/healthz", true},
	"etcd":                    {"127.0.0.1:2381", "/health", false},
}

var staticPodOrder = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// Validate checks the parameters.
func (p *StaticPodRestartParams) Validate() error {
	for _, c := range p.Components {
		if !slices.Contains(staticPodOrder, c) {
			return fmt.Errorf("components: %q is not one of %s", c, strings.Join(staticPodOrder, ", "))
		}
	}
	return positive(p.Timeout, p.Interval)
}

// ErrComponentUnhealthy is returned when a restarted component does not
// come back healthy in time.
var ErrComponentUnhealthy = errors.New("component not healthy")

func (StaticPodRestart) Name() string { return "static-pod-restart" }
func (StaticPodRestart) Doc() string {
	return "Restart control-plane static pods one at a time: move the manifest out of /etc/kubernetes/manifests (parked in /etc/kubernetes/kubeplay-restart), wait until the component stops listening, move it back, and wait until its health endpoint answers ok (apiserver /livez, controller-manager and scheduler /healthz, etcd :2381/health), each bounded by timeout. A manifest left parked by an interrupted run is put back first."
}
func (StaticPodRestart) NewParams() Params { return &StaticPodRestartParams{} }

// tunnel is what the step needs of the connection: TCP from the node.

// present lists the components to restart. A manifest an interrupted run
// left parked is put back (with repair) or counted as present (dry run).
func (p *StaticPodRestartParams) present(ctx context.Context, t *Target, repair bool) ([]string, error) {
	mv := "mv -f"
	if !repair {
		mv = "true"
	}
	r, err := runScript(ctx, t.Conn, `for c in "$@"; do
  if [ -f "`+parkDir+`/$c.yaml" ] && [ ! -f "`+manifestDir+`/$c.yaml" ]; then `+mv+` "`+parkDir+`/$c.yaml" "`+manifestDir+`/$c.yaml" && echo "present=$c" && echo "restored=$c"; continue; fi
  [ -f "`+manifestDir+`/$c.yaml" ] && echo "present=$c"
done; true`, staticPodOrder...)
	if err != nil {
		return nil, fmt.Errorf("list static pod manifests: %w", err)
	}
	var have []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		if k, v, _ := strings.Cut(line, "="); k == "present" {
			have = append(have, v)
		} else if k == "restored" && repair {
			t.Log.Warn("put back a manifest an interrupted restart had parked", zap.String("component", v))
		}
	}
	want := p.Components
	if len(want) == 0 {
		return have, nil
	}
	for _, c := range want {
		if !slices.Contains(have, c) {
			return nil, fmt.Errorf("%s has no manifest in %s on %s", c, manifestDir, t.Host.Name)
		}
	}
	return want, nil
}

// Check names the components that would restart.
func (StaticPodRestart) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	comps, err := p.(*StaticPodRestartParams).present(ctx, t, false)
	if err != nil {
		return Result{}, err
	}
	return Result{Changed: len(comps) > 0, Msg: "would restart " + strings.Join(comps, ", ")}, nil
}

// Run restarts each component in turn.
func (StaticPodRestart) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	sp := p.(*StaticPodRestartParams)
	tun, ok := t.Conn.(transport.Dialer)
	if !ok {
		return Result{}, errors.New("static-pod-restart needs an SSH (or local) connection")
	}
	comps, err := sp.present(ctx, t, true)
	if err != nil {
		return Result{}, err
	}
	var done []string
	w := componentWait{Timeout: sp.Timeout, Interval: sp.Interval}
	for _, c := range comps {
		if err := w.restart(ctx, t, tun, c); err != nil {
			return Result{Changed: true, Data: map[string]any{"restarted": done}}, fmt.Errorf("restart %s on %s: %w", c, t.Host.Name, err)
		}
		done = append(done, c)
	}
	return Result{Changed: len(done) > 0, Msg: "restarted " + strings.Join(done, ", "), Data: map[string]any{"restarted": done}}, nil
}

// componentWait bounds the waits on a control-plane component of a node:
// each wait until it stops listening, and each until it answers healthy.
type componentWait struct {
	Timeout, Interval time.Duration
}

// restart parks component c's manifest until c stops listening, puts it
// back, and waits until c answers its health endpoint.
func (w componentWait) restart(ctx context.Context, t *Target, tun transport.Dialer, c string) (err error) {
	h := staticPodHealth[c]
	if _, err := runScript(ctx, t.Conn, `mkdir -p "$2" && mv -f "$1/$3.yaml" "$2/$3.yaml"`, manifestDir, parkDir, c); err != nil {
		return fmt.Errorf("park manifest: %w", err)
	}
	parked := true
	unpark := func() error {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := runScript(bctx, t.Conn, `mv -f "$2/$3.yaml" "$1/$3.yaml"`, manifestDir, parkDir, c); err != nil {
			return fmt.Errorf("put back manifest: %w", err)
		}
		parked = false
		return nil
	}
	// whatever happens next, the manifest goes back
	defer func() {
		if parked {
			if uerr := unpark(); uerr != nil && err == nil {
				err = uerr
			}
		}
	}()
	if err := w.closed(ctx, t, tun, h.addr, c+" on "+t.Host.Name); err != nil {
		return err
	}
	if err := unpark(); err != nil {
		return err
	}
	return w.healthy(ctx, t, tun, c, "answer "+h.path+" ok")
}

// healthy waits until component c answers its health endpoint ok.
func (w componentWait) healthy(ctx context.Context, t *Target, tun transport.Dialer, c, what string) error {
	h := staticPodHealth[c]
	return w.until(ctx, t, what, func(ctx context.Context) bool { return healthy(ctx, tun, h.addr, h.path, h.tls) })
}

// closed waits until nothing listens on addr on the node any more.
func (w componentWait) closed(ctx context.Context, t *Target, tun transport.Dialer, addr, what string) error {
	return w.until(ctx, t, "stop listening on "+addr+" ("+what+")", func(ctx context.Context) bool {
		conn, err := tun.DialContext(ctx, "tcp", addr)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
}

// until waits until cond holds; each look is bounded by 5 s.
func (w componentWait) until(ctx context.Context, t *Target, what string, cond func(context.Context) bool) error {
	err := poll(ctx, t.Clock, pollSpec{Timeout: w.Timeout, Interval: w.Interval, Look: 5 * time.Second}, func(ctx context.Context) (bool, string, error) {
		return cond(ctx), "", nil
	})
	return expired(err, func(nd *NotDone) error {
		return fmt.Errorf("%w: did not %s within %s", ErrComponentUnhealthy, what, nd.After)
	})
}

// healthy GETs a health endpoint through the node. Health endpoints answer
// anonymous requests; the serving certificate is not what is checked here.
func healthy(ctx context.Context, tun transport.Dialer, addr, path string, useTLS bool) bool {
	scheme := "http"
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return tun.DialContext(ctx, "tcp", addr) }}
	if useTLS {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a liveness probe, like the kubelet's
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == http.StatusOK && (path != "/health" || strings.Contains(string(body), `"health":"true"`))
}
