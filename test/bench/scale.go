package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubeplay/kubeplay/test/lab"
)

// scaleBench runs kubeplay alone over growing numbers of bare nodes: K
// command steps at fixed forks for each count, then the largest count with
// forks = nodes, for wall time, CPU and peak RSS.
func scaleBench(ctx context.Context, l *lab.Lab, counts []int, steps, forks, runs int, kubeplay string, keep bool) error {
	largest := 0
	for _, c := range counts {
		largest = max(largest, c)
	}
	fmt.Fprintf(os.Stderr, "bench: adding %d nodes for the scale runs\n", largest)
	var hosts []lab.Node
	defer func() {
		if !keep {
			for _, n := range hosts {
				_ = l.RemoveNode(context.Background(), n.Name)
			}
		}
	}()
	for i := 1; i <= largest; i++ {
		name := fmt.Sprintf("sn%03d", i)
		_ = l.RemoveNode(ctx, name)
		n, err := l.AddNode(ctx, name, lab.RoleScratch)
		if err != nil {
			return err
		}
		hosts = append(hosts, n)
	}
	dir, err := os.MkdirTemp("", "kubeplay-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var pb strings.Builder
	pb.WriteString("apiVersion: kubeplay/v1\nkind: Playbook\nname: scale\nplays:\n  - hosts: all\n    steps:\n")
	for k := 1; k <= steps; k++ {
		fmt.Fprintf(&pb, "      - command: {argv: [echo, step%d]}\n", k)
	}
	if err := os.WriteFile(filepath.Join(dir, "scale.yaml"), []byte(pb.String()), 0o600); err != nil {
		return err
	}
	cmd := func(n, forks int) (*exec.Cmd, error) {
		var inv strings.Builder
		inv.WriteString("hosts:\n")
		for _, h := range hosts[:n] {
			fmt.Fprintf(&inv, "  %s: {address: %s, user: root, identity_file: %s}\n", h.Name, h.IP, l.KeyFile())
		}
		p := filepath.Join(dir, fmt.Sprintf("inventory-%d.yaml", n))
		if err := os.WriteFile(p, []byte(inv.String()), 0o600); err != nil {
			return nil, err
		}
		return exec.Command(kubeplay, "run", filepath.Join(dir, "scale.yaml"), "-i", p,
			"--known-hosts", l.KnownHostsFile(), "--forks", fmt.Sprint(forks), "--no-lock", "--ssh-agent=false", "--ssh-config", "none",
			"--state-dir", filepath.Join(dir, "state")), nil
	}
	type row struct {
		nodes, forks int
		st           stats
	}
	var rows []row
	series := append([]int{}, counts...)
	cases := make([][2]int, 0, len(series)+1)
	for _, n := range series {
		cases = append(cases, [2]int{n, forks})
	}
	if largest != forks {
		cases = append(cases, [2]int{largest, largest})
	}
	for _, c := range cases {
		var ss []sample
		for r := 1; r <= runs; r++ {
			x, err := cmd(c[0], c[1])
			if err != nil {
				return err
			}
			s, err := measure(x)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: scale %d nodes, forks %d, run %d: %s wall, %s cpu, %d MiB\n", c[0], c[1], r, s.wall.Round(time.Millisecond), s.cpu.Round(time.Millisecond), s.rss/1024)
			ss = append(ss, s)
		}
		rows = append(rows, row{c[0], c[1], summarize(ss)})
	}
	w := os.Stdout
	fmt.Fprintf(w, "\n### Scale: kubeplay, %d command steps, median of %d (min–max)\n\n", steps, runs)
	fmt.Fprintln(w, "| nodes | forks | wall | wall per node-step | CPU (user+sys) | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		per := r.st.median.wall / time.Duration(r.nodes*steps)
		fmt.Fprintf(w, "| %d | %d | %s (%s–%s) | %.1f ms | %s (%s–%s) | %d MiB (%d–%d) |\n", r.nodes, r.forks,
			ms(r.st.median.wall), ms(r.st.min.wall), ms(r.st.max.wall), float64(per)/float64(time.Millisecond),
			ms(r.st.median.cpu), ms(r.st.min.cpu), ms(r.st.max.cpu),
			r.st.median.rss/1024, r.st.min.rss/1024, r.st.max.rss/1024)
	}
	return nil
}
