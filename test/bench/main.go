// Command bench measures kubeplay against the SSH floor and Ansible on the
// same lab hosts, its scale over up to 100 nodes, and its drain against
// kubectl drain (BENCHMARKS.md has the method and the latest tables).
//
//	go run ./test/bench [-what throughput,scale,drain,validate] [-nodes 10] [-steps 20] [-runs 5]
//	                    [-scale 10,50,100] [-scale-steps 10] [-scale-forks 10] [-drain-pods 100]
//
// It adds bare sshd nodes to the running lab (bringing the lab up if
// needed), then runs, alternating, kubeplay (a playbook of K command steps,
// forks = N), the floor (x/crypto/ssh: one connection per host, K sessions
// each, hosts in parallel, known_hosts checked) and ansible-playbook (K
// command tasks, no facts, pipelining and ControlPersist, forks = N, host
// keys checked) when it is installed. Each is a child process, so wall
// time, CPU time (user+system, with its waited-for children) and peak RSS
// come from the kernel's accounting. Scale runs kubeplay alone over growing
// node counts at fixed forks; drain alternates kubeplay's drain and kubectl
// drain on a worker of the lab's cluster. The numbers are reported, never
// asserted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/test/lab"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := floorMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// sample is one measured child process.
type sample struct {
	wall time.Duration
	cpu  time.Duration
	rss  int64 // KiB
}

func measure(cmd *exec.Cmd) (sample, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(out.String(), 20))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return sample{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), rss: ru.Maxrss}, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type stats struct {
	median, min, max sample
}

func summarize(ss []sample) stats {
	pick := func(get func(sample) int64) (med, lo, hi int64) {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = get(s)
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2], v[0], v[len(v)-1]
	}
	var st stats
	w1, w2, w3 := pick(func(s sample) int64 { return int64(s.wall) })
	c1, c2, c3 := pick(func(s sample) int64 { return int64(s.cpu) })
	r1, r2, r3 := pick(func(s sample) int64 { return s.rss })
	st.median = sample{time.Duration(w1), time.Duration(c1), r1}
	st.min = sample{time.Duration(w2), time.Duration(c2), r2}
	st.max = sample{time.Duration(w3), time.Duration(c3), r3}
	return st
}

func run() error {
	nodes := flag.Int("nodes", 10, "lab nodes to add for the throughput runs")
	steps := flag.Int("steps", 20, "command steps per node in the throughput runs")
	runs := flag.Int("runs", 5, "runs of each tool (alternating)")
	what := flag.String("what", "throughput,scale,drain,validate", "which measurements to make")
	scale := flag.String("scale", "10,50,100", "node counts of the scale runs")
	scaleSteps := flag.Int("scale-steps", 10, "command steps per node in the scale runs")
	scaleForks := flag.Int("scale-forks", 10, "forks of the scale series (the largest count also runs with forks = nodes)")
	drainPods := flag.Int("drain-pods", 100, "pods on the drained worker")
	kubeplayBin := flag.String("kubeplay", "bin/kubeplay", "the kubeplay binary")
	keep := flag.Bool("keep-nodes", false, "leave the bench nodes in the lab")
	flag.Parse()
	do := map[string]bool{}
	for _, w := range strings.Split(*what, ",") {
		do[strings.TrimSpace(w)] = true
	}

	ctx := context.Background()
	cfg := lab.DefaultConfig()
	cfg.NoCluster = false
	fmt.Fprintln(os.Stderr, "bench: the lab")
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return err
	}
	kp, err := filepath.Abs(*kubeplayBin)
	if err != nil {
		return err
	}
	if do["throughput"] {
		if err := throughput(ctx, l, *nodes, *steps, *runs, kp, *keep); err != nil {
			return err
		}
	}
	if do["scale"] {
		var counts []int
		for _, f := range strings.Split(*scale, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
				return fmt.Errorf("-scale %q: want node counts like 10,50,100", *scale)
			}
			counts = append(counts, n)
		}
		if err := scaleBench(ctx, l, counts, *scaleSteps, *scaleForks, max(*runs/2+1, 3), kp, *keep); err != nil {
			return err
		}
	}
	if do["drain"] {
		if err := drainBench(ctx, l, *drainPods, *runs, kp); err != nil {
			return err
		}
	}
	if do["validate"] {
		return validateBench(os.Stdout, kp, *runs)
	}
	return nil
}

// throughput is the side-by-side run: kubeplay, the floor and Ansible.
func throughput(ctx context.Context, l *lab.Lab, nodes, steps, runs int, kp string, keep bool) error {
	var hosts []lab.Node
	if !keep {
		defer func() {
			for _, n := range hosts {
				_ = l.RemoveNode(context.Background(), n.Name)
			}
		}()
	}
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("bn%02d", i)
		_ = l.RemoveNode(ctx, name)
		n, err := l.AddNode(ctx, name, lab.RoleScratch)
		if err != nil {
			return err
		}
		hosts = append(hosts, n)
	}
	dir, err := os.MkdirTemp("", "kubeplay-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tools, err := prepare(dir, l, hosts, steps, kp, self)
	if err != nil {
		return err
	}
	results := map[string][]sample{}
	var order []string
	for _, t := range tools {
		order = append(order, t.name)
	}
	for r := 1; r <= runs; r++ {
		for _, t := range tools {
			s, err := measure(t.cmd())
			if err != nil {
				return fmt.Errorf("%s run %d: %w", t.name, r, err)
			}
			fmt.Fprintf(os.Stderr, "bench: %s run %d: %s wall, %s cpu, %d MiB\n", t.name, r, s.wall.Round(time.Millisecond), s.cpu.Round(time.Millisecond), s.rss/1024)
			results[t.name] = append(results[t.name], s)
		}
	}
	report(os.Stdout, nodes, steps, runs, order, results)
	return nil
}

// tool is one contender: how to start a run of it.
type tool struct {
	name string
	cmd  func() *exec.Cmd
}

func prepare(dir string, l *lab.Lab, hosts []lab.Node, steps int, kubeplay, self string) ([]tool, error) {
	var inv, ips, ini strings.Builder
	inv.WriteString("hosts:\n")
	ini.WriteString("[bench]\n")
	for i, h := range hosts {
		fmt.Fprintf(&inv, "  %s: {address: %s, user: root, identity_file: %s}\n", h.Name, h.IP, l.KeyFile())
		if i > 0 {
			ips.WriteString(",")
		}
		ips.WriteString(h.IP)
		fmt.Fprintf(&ini, "%s ansible_host=%s\n", h.Name, h.IP)
	}
	var pb, apb strings.Builder
	pb.WriteString("apiVersion: kubeplay/v1\nkind: Playbook\nname: bench\nplays:\n  - hosts: all\n    steps:\n")
	apb.WriteString("- hosts: bench\n  gather_facts: false\n  tasks:\n")
	for k := 1; k <= steps; k++ {
		fmt.Fprintf(&pb, "      - command: {argv: [echo, step%d]}\n", k)
		fmt.Fprintf(&apb, "    - command: echo step%d\n", k)
	}
	files := map[string]string{
		"inventory.yaml": inv.String(), "bench.yaml": pb.String(),
		"hosts.ini": ini.String(), "playbook.yml": apb.String(),
		"ansible.cfg": fmt.Sprintf(`[defaults]
host_key_checking = True
forks = %d
interpreter_python = /usr/bin/python3
private_key_file = %s
remote_user = root
stdout_callback = default
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes
`, len(hosts), l.KeyFile(), l.KnownHostsFile()),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	n := fmt.Sprint(len(hosts))
	tools := []tool{
		{"kubeplay", func() *exec.Cmd {
			return exec.Command(kubeplay, "run", filepath.Join(dir, "bench.yaml"), "-i", filepath.Join(dir, "inventory.yaml"),
				"--known-hosts", l.KnownHostsFile(), "--forks", n, "--no-lock", "--ssh-agent=false", "--ssh-config", "none",
				"--state-dir", filepath.Join(dir, "state"))
		}},
		{"floor", func() *exec.Cmd {
			return exec.Command(self, "floor", "-hosts", ips.String(), "-steps", fmt.Sprint(steps), "-key", l.KeyFile(), "-known-hosts", l.KnownHostsFile())
		}},
	}
	if ap, err := exec.LookPath("ansible-playbook"); err == nil {
		tools = append(tools, tool{"ansible", func() *exec.Cmd {
			c := exec.Command(ap, "-i", filepath.Join(dir, "hosts.ini"), filepath.Join(dir, "playbook.yml"))
			c.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"))
			return c
		}})
	} else {
		fmt.Fprintln(os.Stderr, "bench: ansible-playbook is not installed (apt-get install ansible-core); Ansible is left out")
	}
	return tools, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func report(w *os.File, nodes, steps, runs int, order []string, res map[string][]sample) {
	fmt.Fprintf(w, "\n### Step throughput: %d nodes × %d steps, median of %d (min–max)\n\n", nodes, steps, runs)
	fmt.Fprintln(w, "| tool | wall | CPU (user+sys) | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|")
	st := map[string]stats{}
	for _, name := range order {
		s := summarize(res[name])
		st[name] = s
		fmt.Fprintf(w, "| %s | %s (%s–%s) | %s (%s–%s) | %d MiB (%d–%d) |\n", name,
			ms(s.median.wall), ms(s.min.wall), ms(s.max.wall),
			ms(s.median.cpu), ms(s.min.cpu), ms(s.max.cpu),
			s.median.rss/1024, s.min.rss/1024, s.max.rss/1024)
	}
	fmt.Fprintln(w)
	if f, ok := st["floor"]; ok {
		k := st["kubeplay"]
		fmt.Fprintf(w, "- kubeplay / floor: wall %.2f×, CPU %.2f×\n", float64(k.median.wall)/float64(f.median.wall), float64(k.median.cpu)/float64(f.median.cpu))
	}
	if a, ok := st["ansible"]; ok {
		k := st["kubeplay"]
		fmt.Fprintf(w, "- Ansible / kubeplay: wall %.2f×, CPU %.2f×\n", float64(a.median.wall)/float64(k.median.wall), float64(a.median.cpu)/float64(k.median.cpu))
	}
}

// validateBench times `kubeplay validate` of every bundled playbook.
func validateBench(w *os.File, kubeplay string, runs int) error {
	names := playbooks.Names()
	var ss []sample
	for r := 0; r < runs; r++ {
		s, err := measure(exec.Command(kubeplay, append([]string{"validate"}, names...)...))
		if err != nil {
			return err
		}
		ss = append(ss, s)
	}
	st := summarize(ss)
	fmt.Fprintf(w, "\n### `kubeplay validate` of the %d bundled playbooks, median of %d\n\n%s wall (%s–%s), %s CPU, %d MiB peak RSS\n",
		len(names), runs, ms(st.median.wall), ms(st.min.wall), ms(st.max.wall), ms(st.median.cpu), st.median.rss/1024)
	return nil
}
