package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/kubectl/pkg/drain"
)

// Drain cordons a node and evicts its pods, respecting PodDisruptionBudgets,
// always within a bounded time (k8s.io/kubectl/pkg/drain).
type Drain struct{}

// DrainParams are drain's parameters.
type DrainParams struct {
	Node               string        `yaml:"node" doc:"Node name (default: the host's node_name)"`
	Timeout            time.Duration `yaml:"timeout" default:"10m" doc:"give up after this long; never unbounded"`
	GracePeriod        *int          `yaml:"grace_period" doc:"seconds each pod gets to terminate (default: the pod's own)"`
	PodSelector        string        `yaml:"pod_selector" doc:"only evict pods matching this label selector"`
	IgnoreDaemonSets   bool          `yaml:"ignore_daemonsets" default:"true" doc:"leave DaemonSet pods (as the docs do)"`
	DeleteEmptyDirData bool          `yaml:"delete_emptydir_data" doc:"evict pods with emptyDir volumes, losing that data"`
	Force              bool          `yaml:"force" doc:"also delete pods no controller manages (they will not come back)"`
	DisableEviction    bool          `yaml:"disable_eviction" doc:"delete instead of evict: bypasses PodDisruptionBudgets"`
	RetryDelay         time.Duration `yaml:"retry_delay" default:"5s" doc:"pause between evictions refused by a PodDisruptionBudget (429)"`
	OnFailure          string        `yaml:"on_failure" default:"uncordon" doc:"when the drain fails: uncordon (return the node to its state before the step) or leave (keep it cordoned to investigate)"`
}

// ErrDrainTimeout is returned when pods are still on the node at the timeout.
var ErrDrainTimeout = errors.New("drain did not finish")

// Validate checks the parameters.
func (p *DrainParams) Validate() error {
	if p.Timeout <= 0 || p.RetryDelay <= 0 {
		return errors.New("timeout and retry_delay must be positive")
	}
	switch p.OnFailure {
	case "uncordon", "leave":
	default:
		return fmt.Errorf("on_failure %q: want uncordon or leave", p.OnFailure)
	}
	if p.PodSelector != "" {
		if _, err := labels.Parse(p.PodSelector); err != nil {
			return fmt.Errorf("pod_selector: %w", err)
		}
	}
	return nil
}

func (Drain) Name() string { return "drain" }
func (Drain) Doc() string {
	return "Cordon the host's Node and evict its pods through the Eviction API, so PodDisruptionBudgets are respected; evictions refused by a PDB are retried until the bounded timeout, and the failure names the pods still there and the PDBs holding them. Unmanaged and emptyDir pods are refused unless allowed. Rollback uncordons the node if this step cordoned it."
}
func (Drain) NewParams() Params { return &DrainParams{} }

// drainLog collects the drain helper's progress lines. The helper wraps Out
// and ErrOut in a lock each, and its eviction goroutines write to both: one
// buffer behind both needs its own lock.
type drainLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (d *drainLog) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.Write(b)
}

func (d *drainLog) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String()
}

func (p *DrainParams) helper(ctx context.Context, t *Target, out *drainLog) *drain.Helper {
	grace := -1
	if p.GracePeriod != nil {
		grace = *p.GracePeriod
	}
	return &drain.Helper{
		Ctx: ctx, Client: t.Kube, Force: p.Force, GracePeriodSeconds: grace,
		IgnoreAllDaemonSets: p.IgnoreDaemonSets,
		DeleteEmptyDirData:  p.DeleteEmptyDirData, PodSelector: p.PodSelector,
		DisableEviction: p.DisableEviction, Timeout: p.Timeout, EvictErrorRetryDelay: p.RetryDelay,
		Out: out, ErrOut: out,
	}
}

// Check lists what would be evicted and what blocks the drain.
func (Drain) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	dp := p.(*DrainParams)
	node, err := nodeName(t, dp.Node)
	if err != nil {
		return Result{}, err
	}
	var out drainLog
	list, errs := dp.helper(ctx, t, &out).GetPodsForDeletion(node)
	if len(errs) > 0 {
		return Result{}, fmt.Errorf("drain %s would be refused: %w", node, errors.Join(errs...))
	}
	var names []string
	for _, pd := range list.Pods() {
		names = append(names, pd.Namespace+"/"+pd.Name)
	}
	cordoned, _, err := isCordoned(ctx, t, node)
	if err != nil {
		return Result{}, err
	}
	// ask the API server, without evicting, which evictions PDBs refuse now
	var blocked []string
	if !dp.DisableEviction {
		for _, pd := range list.Pods() {
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pd.Name, Namespace: pd.Namespace},
				DeleteOptions: &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}}
			// one try: a 429 is the answer (a PDB refuses it now)
			err := t.Kube.PolicyV1().Evictions(pd.Namespace).Evict(ctx, ev)
			switch {
			case err == nil:
			case apierrors.IsTooManyRequests(err):
				blocked = append(blocked, fmt.Sprintf("%s/%s (%v)", pd.Namespace, pd.Name, err))
			case apierrors.IsNotFound(err):
			default:
				return Result{}, fmt.Errorf("dry-run eviction of %s/%s: %w", pd.Namespace, pd.Name, err)
			}
		}
	}
	changed := !cordoned || len(names) > 0
	msg := fmt.Sprintf("would cordon %s and evict %d pod(s)", node, len(names))
	if len(names) > 0 {
		msg += ": " + strings.Join(names, ", ")
	}
	if len(blocked) > 0 {
		msg += fmt.Sprintf("; blocked by a PodDisruptionBudget right now: %s", strings.Join(blocked, ", "))
	}
	return Result{Changed: changed, Msg: msg,
		Data: map[string]any{"node": node, "pods": names, "blocked": blocked}}, nil
}

// Run cordons and drains.
func (Drain) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	dp := p.(*DrainParams)
	node, err := nodeName(t, dp.Node)
	if err != nil {
		return Result{}, err
	}
	ours, err := cordonNode(ctx, t, node)
	if err != nil {
		return Result{}, err
	}
	st := cordonState{Node: node, CordonedByUs: ours}
	// a failed drain puts back what it changed, unless asked to leave it
	fail := func(res Result, err error) (Result, error) {
		if ours && dp.OnFailure == "uncordon" {
			if _, _, uerr := uncordonNode(context.WithoutCancel(ctx), t, node, false); uerr != nil {
				err = errors.Join(err, uerr)
			} else {
				st.CordonedByUs = false
				err = fmt.Errorf("%w (node uncordoned again)", err)
			}
		}
		res.Data = asData(st)
		return res, err
	}
	var out drainLog
	h := dp.helper(ctx, t, &out)
	list, errs := h.GetPodsForDeletion(node)
	if len(errs) > 0 {
		return fail(Result{}, fmt.Errorf("drain %s refused: %w", node, errors.Join(errs...)))
	}
	pods := list.Pods()
	if len(pods) == 0 {
		return Result{Changed: ours, Msg: node + " has nothing to evict", Data: asData(st)}, nil
	}
	// the library's timeout covers the evictions; a context bound covers
	// the whole step, whatever the library does
	dctx, cancel := context.WithTimeout(ctx, dp.Timeout+30*time.Second)
	defer cancel()
	h.Ctx = dctx
	start := time.Now()
	if err := h.DeleteOrEvictPods(pods); err != nil {
		left := blockers(context.WithoutCancel(ctx), t, node, dp)
		if time.Since(start) < dp.Timeout && ctx.Err() == nil {
			// refused outright (not a PDB's 429, which is retried until the
			// timeout): an API error, named as it came
			return fail(Result{Changed: true, Stdout: out.String()}, fmt.Errorf("drain %s: %w; %s", node, err, left))
		}
		return fail(Result{Changed: true, Stdout: out.String()}, fmt.Errorf("%w: %s after %s: %s", ErrDrainTimeout, node, dp.Timeout, left))
	}
	return Result{Changed: true, Msg: fmt.Sprintf("evicted %d pod(s) from %s", len(pods), node), Data: asData(st), Stdout: out.String()}, nil
}

// blockers names the pods still on the node and the PDBs that cover them.
func blockers(ctx context.Context, t *Target, node string, dp *DrainParams) string {
	var out drainLog
	list, _ := dp.helper(ctx, t, &out).GetPodsForDeletion(node)
	if list == nil || len(list.Pods()) == 0 {
		return "no evictable pods left"
	}
	var parts []string
	for _, pd := range list.Pods() {
		desc := pd.Namespace + "/" + pd.Name
		if pdbs := coveringPDBs(ctx, t, &pd); len(pdbs) > 0 {
			desc += " (blocked by PodDisruptionBudget " + strings.Join(pdbs, ", ") + ")"
		}
		parts = append(parts, desc)
	}
	sort.Strings(parts)
	return "still on the node: " + strings.Join(parts, "; ")
}

func coveringPDBs(ctx context.Context, t *Target, pod *corev1.Pod) []string {
	pdbs, err := t.Kube.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, pdb := range pdbs.Items {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, fmt.Sprintf("%s/%s (disruptionsAllowed=%d)", pdb.Namespace, pdb.Name, pdb.Status.DisruptionsAllowed))
		}
	}
	return out
}

// Undo uncordons the node if this step cordoned it.
func (Drain) Undo(ctx context.Context, t *Target, p Params, r Result) error {
	return Cordon{}.Undo(ctx, t, p, r)
}
