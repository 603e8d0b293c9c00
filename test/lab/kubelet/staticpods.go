package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubeplay/kubeplay/test/lab/proc"
)

// Resolver maps a container image ("registry.k8s.io/kube-apiserver:v1.36.3")
// to the binary that plays it.
type Resolver func(image string) (string, error)

// CacheResolver resolves images to the lab's build cache:
// kube-*:vX.Y.Z → cache/kube/vX.Y.Z/NAME, etcd:X.Y.Z-N → cache/etcd/vX.Y.Z/etcd.
func CacheResolver(cache string) Resolver {
	return func(image string) (string, error) {
		ref := image[strings.LastIndex(image, "/")+1:]
		name, tag, ok := strings.Cut(ref, ":")
		if !ok {
			return "", fmt.Errorf("image %q has no tag", image)
		}
		var p string
		switch {
		case name == "etcd":
			v, _, _ := strings.Cut(tag, "-")
			p = filepath.Join(cache, "etcd", "v"+strings.TrimPrefix(v, "v"), "etcd")
		case strings.HasPrefix(name, "kube-"):
			p = filepath.Join(cache, "kube", tag, name)
		default:
			return "", fmt.Errorf("image %q is not one the lab can run", image)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("image %q: no lab binary at %s", image, p)
		}
		return p, nil
	}
}

// StaticPod is a manifest and what runs for it.
type StaticPod struct {
	File    string
	Pod     *corev1.Pod
	Hash    string
	Started time.Time // current process start
	Running bool
	Restart int32
	Err     string
}

type podProc struct {
	sp     StaticPod
	cancel context.CancelFunc
	done   chan struct{}
	leave  atomic.Bool
}

// StaticPods runs the manifests of a directory, restarting a component when
// its file changes and stopping it when the file goes away.
//
// As with a real kubelet and its container runtime, components outlive a
// kubelet restart: Run's ctx ending with Leave set keeps them running, and
// the next kubelet adopts the processes recorded under StateDir whose
// manifest is unchanged. Ending without Leave (systemctl stop) stops them.
type StaticPods struct {
	Dir      string
	LogDir   string
	StateDir string // pid records of running components
	Resolve  Resolver
	Poll     time.Duration
	Leave    func() bool // at shutdown: keep components running?

	mu    sync.Mutex
	procs map[string]*podProc
}

// record is what survives a kubelet restart about one component.
type record struct {
	PID     int       `json:"pid"`
	Hash    string    `json:"hash"`
	Started time.Time `json:"started"`
}

func (s *StaticPods) recordPath(file string) string {
	return filepath.Join(s.StateDir, filepath.Base(file)+".json")
}

func (s *StaticPods) saveRecord(file string, r record) {
	if s.StateDir == "" {
		return
	}
	_ = os.MkdirAll(s.StateDir, 0o755)
	b, _ := json.Marshal(r)
	_ = os.WriteFile(s.recordPath(file), b, 0o644)
}

// adoptable returns a still-running process left for this manifest.
func (s *StaticPods) adoptable(sp StaticPod) (record, bool) {
	if s.StateDir == "" {
		return record{}, false
	}
	b, err := os.ReadFile(s.recordPath(sp.File))
	if err != nil {
		return record{}, false
	}
	var r record
	if json.Unmarshal(b, &r) != nil || r.Hash != sp.Hash || !proc.Alive(r.PID) {
		_ = os.Remove(s.recordPath(sp.File))
		return record{}, false
	}
	return r, true
}

// Snapshot returns the current static pods, sorted by file.
func (s *StaticPods) Snapshot() []StaticPod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StaticPod, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// Run syncs the directory until ctx ends, then stops every component.
func (s *StaticPods) Run(ctx context.Context) {
	s.mu.Lock()
	s.procs = map[string]*podProc{}
	s.mu.Unlock()
	if s.Poll == 0 {
		s.Poll = time.Second
	}
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	for {
		s.sync(ctx)
		select {
		case <-ctx.Done():
			if s.Leave != nil && s.Leave() {
				s.leaveAll()
			} else {
				s.stopAll()
			}
			return
		case <-t.C:
		}
	}
}

// leaveAll stops supervising without stopping the components.
func (s *StaticPods) leaveAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = map[string]*podProc{}
	s.mu.Unlock()
	for _, p := range procs {
		p.leave.Store(true)
		p.cancel()
		<-p.done
	}
}

// Manifests reads a static pod directory as the real kubelet does
// (pkg/kubelet/config/file.go): every regular file whose name does not
// start with a dot, whatever its extension, in name order; a file that is
// not a pod is skipped (the kubelet logs it), and a pod whose name an
// earlier file already took is rejected as a duplicate.
func Manifests(dir string) map[string]StaticPod {
	want := map[string]StaticPod{}
	paths, _ := filepath.Glob(filepath.Join(dir, "[^.]*"))
	sort.Strings(paths)
	names := map[string]bool{}
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var pod corev1.Pod
		if err := yaml.Unmarshal(data, &pod); err != nil || pod.Name == "" || len(pod.Spec.Containers) == 0 {
			continue // the real kubelet logs and skips such files
		}
		if names[pod.Namespace+"/"+pod.Name] {
			continue // a duplicate full name: the kubelet keeps the first
		}
		names[pod.Namespace+"/"+pod.Name] = true
		sum := sha256.Sum256(data)
		want[path] = StaticPod{File: path, Pod: &pod, Hash: hex.EncodeToString(sum[:16])}
	}
	return want
}

func (s *StaticPods) sync(ctx context.Context) {
	want := Manifests(s.Dir)
	s.mu.Lock()
	var stop []*podProc
	for f, p := range s.procs {
		if w, ok := want[f]; !ok || w.Hash != p.sp.Hash {
			stop = append(stop, p)
			delete(s.procs, f)
		}
	}
	s.mu.Unlock()
	for _, p := range stop {
		p.cancel()
		<-p.done
	}
	for f, w := range want {
		s.mu.Lock()
		_, running := s.procs[f]
		s.mu.Unlock()
		if !running {
			s.start(ctx, w)
		}
	}
}

func (s *StaticPods) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = map[string]*podProc{}
	s.mu.Unlock()
	for _, p := range procs {
		p.cancel()
		<-p.done
	}
}

func (s *StaticPods) start(ctx context.Context, sp StaticPod) {
	// a component's lifetime is its own: only stop or leave (which decide
	// whether it keeps running) end it, never the kubelet's context directly
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &podProc{sp: sp, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.procs[sp.File] = p
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		backoff := time.Second
		for pctx.Err() == nil {
			started := time.Now()
			err := s.runOnce(pctx, p)
			s.mu.Lock()
			p.sp.Running = false
			if err != nil {
				p.sp.Err = err.Error()
			}
			s.mu.Unlock()
			if pctx.Err() != nil {
				return
			}
			if time.Since(started) > time.Minute {
				backoff = time.Second
			}
			select {
			case <-pctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			s.mu.Lock()
			p.sp.Restart++
			s.mu.Unlock()
		}
	}()
}

// runOnce runs the pod's first container until it exits or ctx ends.
func (s *StaticPods) runOnce(ctx context.Context, p *podProc) error {
	if r, ok := s.adoptable(p.sp); ok {
		return s.watchAdopted(ctx, p, r)
	}
	c := p.sp.Pod.Spec.Containers[0]
	bin, err := s.Resolve(c.Image)
	if err != nil {
		return err
	}
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(argv) == 0 {
		return fmt.Errorf("container %s has no command", c.Name)
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Env = os.Environ()
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Dir = c.WorkingDir
	if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.LogDir, p.sp.Pod.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	p.sp.Started, p.sp.Running, p.sp.Err = now, true, ""
	s.mu.Unlock()
	s.saveRecord(p.sp.File, record{PID: cmd.Process.Pid, Hash: p.sp.Hash, Started: now})
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		_ = os.Remove(s.recordPath(p.sp.File))
		return fmt.Errorf("%s exited: %v", p.sp.Pod.Name, err)
	case <-ctx.Done():
		if p.leave.Load() {
			return nil // the component outlives this kubelet
		}
		exited := false
		s.terminate(p, cmd.Process.Pid, func() bool {
			if !exited {
				select {
				case <-waitErr:
					exited = true
				default:
				}
			}
			return exited
		})
		return nil
	}
}

// watchAdopted follows a component started by an earlier kubelet.
func (s *StaticPods) watchAdopted(ctx context.Context, p *podProc, r record) error {
	s.mu.Lock()
	p.sp.Started, p.sp.Running, p.sp.Err = r.Started, true, ""
	s.mu.Unlock()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if !proc.Alive(r.PID) {
				_ = os.Remove(s.recordPath(p.sp.File))
				return fmt.Errorf("%s exited", p.sp.Pod.Name)
			}
		case <-ctx.Done():
			if p.leave.Load() {
				return nil
			}
			s.terminate(p, r.PID, func() bool { return !proc.Alive(r.PID) })
			return nil
		}
	}
}

// terminate stops a component's process group: SIGTERM, then SIGKILL
// after its grace period (at most 10 s in the lab).
func (s *StaticPods) terminate(p *podProc, pid int, exited func() bool) {
	grace := int64(30)
	if p.sp.Pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *p.sp.Pod.Spec.TerminationGracePeriodSeconds
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.Now().Add(time.Duration(min(grace, 10)) * time.Second)
	for !exited() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !exited() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for !exited() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.Remove(s.recordPath(p.sp.File))
}
