package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/lab"
)

func TestAptPinOnALabNode(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	v, err := lab.LoadVersions(l.ScriptsDir())
	if err != nil || len(v.Extra) == 0 {
		t.Fatalf("versions: %+v %v", v, err)
	}
	older := v.Extra[0] // an older patch of the lab's first minor
	pin := func(version string, mod func(*runner.Options)) result {
		return runPlaybook(t, l, `apiVersion: kubeplay/v1
kind: Playbook
name: pin
params:
  v: {type: string, required: true}
plays:
  - hosts: w2
    steps:
      - apt-pin: {packages: {kubectl: '{{ params.v }}'}}
`, func(o *runner.Options) {
			o.Params = map[string]any{"v": version}
			if mod != nil {
				mod(o)
			}
		})
	}
	state := func() string {
		out, _ := l.Exec(ctx, "w2", "dpkg-query -W -f='${Version}' kubectl; echo; apt-mark showhold | grep -x kubectl || echo unheld")
		return strings.TrimSpace(out)
	}
	defer pin(lab.DebVersion(v.Kube[0]), nil)

	// check mode predicts, changes nothing
	before := state()
	r := pin(older+"-*", func(o *runner.Options) { o.Check = true })
	if r.err != nil || r.recap.Totals().Changed != 1 || state() != before {
		t.Fatalf("check: %v, changed %d, state %q → %q", r.err, r.recap.Totals().Changed, before, state())
	}
	// the held package moves to the exact version and is held again
	r = pin(older+"-*", nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := state(); got != lab.DebVersion(older)+"\nkubectl" {
		t.Fatalf("after pin: %q", got)
	}
	if r = pin(older+"-*", nil); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second run must be unchanged: %v %d", r.err, r.recap.Totals().Changed)
	}
	// a version no repository offers fails clearly, and nothing changes
	r = pin("1.36.99-*", nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "no matching package version: kubectl=1.36.99-*") {
		t.Fatalf("want a clear error naming the version: %v", r.err)
	}
	if got := state(); got != lab.DebVersion(older)+"\nkubectl" {
		t.Fatalf("a failed pin changed the node: %q", got)
	}
}

func TestSwapRepoOnALabNode(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	v, _ := lab.LoadVersions(l.ScriptsDir())
	from, to := lab.Minor(v.Kube[0]), lab.Minor(v.Kube[1])
	restore := `sed -i 's#/core:/stable:/v[0-9.]*/#/core:/stable:/v` + from + `/#' /etc/apt/sources.list.d/kubernetes.list && apt-get update -qq`
	defer l.Exec(ctx, "w1", restore)
	swap := func(minor string, check bool) result {
		return runPlaybook(t, l, `apiVersion: kubeplay/v1
kind: Playbook
name: swap
params:
  minor: {type: string, required: true}
plays:
  - hosts: w1
    steps:
      - swap-repo: {minor: '{{ params.minor }}'}
`, func(o *runner.Options) { o.Params = map[string]any{"minor": minor}; o.Check = check })
	}
	if r := swap(to, true); r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("check: %v", r.err)
	}
	if out, _ := l.Exec(ctx, "w1", "cat /etc/apt/sources.list.d/kubernetes.list"); !strings.Contains(out, "/v"+from+"/") {
		t.Fatalf("check mode changed the file: %s", out)
	}
	if r := swap(to, false); r.err != nil || r.recap.Totals().Changed != 1 {
		t.Fatalf("swap: %v", r.err)
	}
	out, err := l.Exec(ctx, "w1", "apt-cache madison kubeadm")
	if err != nil || !strings.Contains(out, lab.DebVersion(v.Kube[1])) || !strings.Contains(out, "/v"+to+"/deb") {
		t.Fatalf("madison after the swap: %s %v", out, err)
	}
	if r := swap(to, false); r.err != nil || r.recap.Totals().Changed != 0 {
		t.Fatalf("second run must be unchanged: %v", r.err)
	}
	if r := swap("1.39", false); r.err == nil || !strings.Contains(r.err.Error(), "one minor at a time") {
		t.Fatalf("skipping minors must be refused: %v", r.err)
	}
}
