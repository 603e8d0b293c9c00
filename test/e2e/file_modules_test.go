package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
)

// fileState is everything under the test directory: paths, modes, owners,
// link targets and content hashes.
func fileState(t *testing.T, l *lab.Lab, node, dir string) string {
	t.Helper()
	out, err := l.Exec(context.Background(), node, `cd `+dir+` 2>/dev/null || exit 0
find . -printf '%p %y %m %u %g %l\n' | sort
find . -type f -exec md5sum {} + | sort`)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFileModulesConvergeCheckAndRollBack runs each file module three ways
// on a lab node: --check (reports a change, changes nothing), a real run
// (changed, with its effect checked on the node), and a second run
// (unchanged). Then a failing play proves every edit is rolled back.
func TestFileModulesConvergeCheckAndRollBack(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	const dir = "/etc/kpf"
	setup := `rm -rf /etc/kpf /etc/kpf.kubeplay-* && mkdir -p /etc/kpf && cd /etc/kpf
printf 'overlay\n' > modules.conf
printf 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"\n' > flags.env
printf 'old\n' > old
printf 'm\n' > m1
cp /etc/kubernetes/manifests/kube-apiserver.yaml apiserver.yaml 2>/dev/null || true`
	if _, err := l.Exec(ctx, "cp1", setup); err != nil {
		t.Fatal(err)
	}
	defer l.Exec(ctx, "cp1", "rm -rf /etc/kpf /etc/kpf.kubeplay-*")
	tpl := filepath.Join(t.TempDir(), "motd.tpl")
	if err := os.WriteFile(tpl, []byte("node={{ host.name }} groups={{ len(host.groups) > 0 }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := `      - name: copy
        copy: {dest: /etc/kpf/a.conf, content: "a=1\n", mode: "0640", group: daemon}
      - name: secret
        copy: {dest: /etc/kpf/token, secret_content: '{{ params.token }}'}
      - name: template
        template: {src: ` + tpl + `, dest: /etc/kpf/motd}
      - name: dir
        file: {path: /etc/kpf/d/e, state: directory, mode: "0750"}
      - name: link
        file: {path: /etc/kpf/l, state: link, src: /etc/kpf/a.conf}
      - name: absent
        file: {path: /etc/kpf/old, state: absent}
      - name: move
        move: {src: /etc/kpf/m1, dest: /etc/kpf/m2}
      - name: line
        line-edit: {path: /etc/kpf/modules.conf, line: br_netfilter, insert_after: '^overlay$'}
      - name: flag
        line-edit: {path: /etc/kpf/flags.env, var: KUBELET_KUBEADM_ARGS, flag: node-labels, value: kubeplay.e2e/edited=yes}
      - name: flag-off
        line-edit: {path: /etc/kpf/flags.env, var: KUBELET_KUBEADM_ARGS, flag: pod-infra-container-image, state: absent}
      - name: manifest
        yaml-edit:
          path: /etc/kpf/apiserver.yaml
          select: {kind: Pod}
          ops:
            - {op: set-flag, container: kube-apiserver, flag: audit-log-maxage, value: "30"}
            - {op: add-volume-mount, container: kube-apiserver, name: kpf, mount_path: /etc/kpf, host_path: /etc/kpf, type: DirectoryOrCreate, read_only: true}
            - {op: set, path: metadata.annotations.kubeplay/edited, value: "yes"}
`
	pb := func(extra string) string {
		return `apiVersion: kubeplay/v1
kind: Playbook
name: files
params:
  token: {type: string, secret: true, default: s3cr3t-t0ken-value}
plays:
  - hosts: cp1
    steps:
` + steps + extra
	}
	names := []string{"copy", "secret", "template", "dir", "link", "absent", "move", "line", "flag", "flag-off", "manifest"}
	before := fileState(t, l, "cp1", dir)

	// --check: every step predicts a change, nothing changes
	r := runPlaybook(t, l, pb(""), func(o *runner.Options) { o.Check, o.Diff = true, true })
	if r.err != nil {
		t.Fatal(r.err)
	}
	outcomes := harness.Outcomes(r.rec)
	for _, n := range names {
		if outcomes[n+"@cp1"] != events.Changed {
			t.Errorf("--check: %s is %s, want changed", n, outcomes[n+"@cp1"])
		}
	}
	if after := fileState(t, l, "cp1", dir); after != before {
		t.Fatalf("--check changed the node:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// the real run
	r = runPlaybook(t, l, pb(""), nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.recap.Totals().Changed; got != len(names) {
		t.Fatalf("first run: %d changed, want %d", got, len(names))
	}
	effect, _ := l.Exec(ctx, "cp1", `cd /etc/kpf
stat -c '%n %a %G' a.conf token d d/e motd; cat a.conf token motd modules.conf flags.env
readlink l; test -e old && echo old-still-here; ls old.kubeplay-* >/dev/null 2>&1 || ls /etc/kpf | grep -c '^old.kubeplay-'; cat m2; test -e m1 && echo m1-still-here
grep -c -- '--audit-log-maxage=30' apiserver.yaml; grep -c 'mountPath: /etc/kpf' apiserver.yaml; grep -c 'kubeplay/edited' apiserver.yaml`)
	for _, want := range []string{
		"a.conf 640 daemon", "token 600 root", "d 755 root", "d/e 750 root", "motd 644 root",
		"a=1\ns3cr3t-t0ken-value" /* the secret reached the file */, "node=cp1 groups=true",
		"overlay\nbr_netfilter\n",
		`KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --node-labels=kubeplay.e2e/edited=yes"`,
		"/etc/kpf/a.conf", "m\n1\n1\n1",
	} {
		if !strings.Contains(effect, want) {
			t.Errorf("after the run the node lacks %q:\n%s", want, effect)
		}
	}
	if strings.Contains(effect, "still-here") {
		t.Errorf("absent/move left the source:\n%s", effect)
	}
	// the manifest edit touched only its lines
	diff, _ := l.Exec(ctx, "cp1", "diff /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kpf/apiserver.yaml | grep '^[<>]'")
	if strings.Contains(diff, "<") {
		t.Errorf("yaml-edit removed or rewrote lines of the manifest:\n%s", diff)
	}
	for _, e := range r.rec.Events() {
		if strings.Contains(fmt.Sprintf("%+v", e), "s3cr3t-t0ken-value") {
			t.Fatalf("the secret reached an event: %+v", e)
		}
	}

	// the second run changes nothing
	converged := fileState(t, l, "cp1", dir)
	r = runPlaybook(t, l, pb(""), nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.recap.Totals().Changed; got != 0 {
		t.Fatalf("second run: %d changed, want 0 (%v)", got, harness.Outcomes(r.rec))
	}
	if after := fileState(t, l, "cp1", dir); after != converged {
		t.Fatalf("second run changed the node")
	}

	// from the original state, a failure after every edit rolls each back
	if _, err := l.Exec(ctx, "cp1", setup); err != nil {
		t.Fatal(err)
	}
	r = runPlaybook(t, l, pb("      - assert: {that: ['false'], msg: stop here}\n"), nil)
	if r.err == nil {
		t.Fatal("the failing play succeeded")
	}
	// backups stay beside the files (they are the operator's too); apart
	// from them the node is as it was
	after, _ := l.Exec(ctx, "cp1", `cd /etc/kpf && find . -name '*.kubeplay-*' -prune -o -printf '%p %y %m %u %g %l\n' | sort
find . -name '*.kubeplay-*' -prune -o -type f -exec md5sum {} + | sort`)
	if after != before {
		t.Fatalf("rollback left the node changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestKubeletFilesEdited edits a worker's real kubelet files (config.yaml
// and kubeadm-flags.env), restarts the kubelet and proves it loads them and
// the Node stays Ready; a second run changes nothing; a field the kubelet
// does not know is refused before any host is touched.
func TestKubeletFilesEdited(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	const files = "/var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env"
	orig, err := l.Exec(ctx, "w2", "cat "+files)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(ctx, "w2", "mkdir -p /root/kpf-orig && cp -p "+files+" /root/kpf-orig/"); err != nil {
		t.Fatal(err)
	}
	defer l.Exec(ctx, "w2", "cp -p /root/kpf-orig/* /var/lib/kubelet/ && rm -rf /root/kpf-orig /var/lib/kubelet/*.kubeplay-* && systemctl restart kubelet")
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: kubelet-files
plays:
  - hosts: w2
    steps:
      - name: config
        edit-kubelet-config:
          set: {shutdownGracePeriod: 30s, evictionHard."memory.available": 200Mi}
          merge: {authentication: {webhook: {cacheTTL: 1m0s}}}
        register: config
      - name: flags
        line-edit: {path: /var/lib/kubelet/kubeadm-flags.env, var: KUBELET_KUBEADM_ARGS, flag: v, value: "4"}
        register: flags
      - name: restart
        restart-service: {name: kubelet, state: restarted, timeout: 30s}
        when: config.changed || flags.changed
      - wait-node-ready: {timeout: 60s, stable_for: 3s}
`
	r := runPlaybook(t, l, src, func(o *runner.Options) { o.Kube = kube(t, l) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.recap.Totals().Changed; got != 3 {
		t.Fatalf("first run: %d changed, want 3 (config, flags, restart)", got)
	}
	now, _ := l.Exec(ctx, "w2", "cat "+files)
	running, _ := l.Exec(ctx, "w2", "systemctl is-active kubelet; ps -o args= -C kubelet")
	if !strings.HasPrefix(running, "active\n") || !strings.Contains(running, "--v=4") {
		t.Errorf("the kubelet is not running with the new flag:\n%s", running)
	}
	for _, want := range []string{"shutdownGracePeriod: 30s", "memory.available: 200Mi", "cacheTTL: 1m0s", "--v=4\""} {
		if !strings.Contains(now, want) {
			t.Errorf("w2 lacks %q:\n%s", want, now)
		}
	}
	// only the edited lines differ from the original files
	var added, removed []string
	for _, line := range strings.Split(now, "\n") {
		if !strings.Contains(orig, line+"\n") {
			added = append(added, strings.TrimSpace(line))
		}
	}
	for _, line := range strings.Split(orig, "\n") {
		if !strings.Contains(now, line+"\n") {
			removed = append(removed, strings.TrimSpace(line))
		}
	}
	t.Logf("removed %q, added %q", removed, added)
	if len(removed) != 3 || len(added) != 5 {
		t.Errorf("more than the edited lines changed:\n%s", now)
	}

	r = runPlaybook(t, l, src, func(o *runner.Options) { o.Kube = kube(t, l) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.recap.Totals().Changed; got != 0 {
		t.Fatalf("second run: %d changed, want 0", got)
	}

	// an unknown field or a wrong type fails at load, naming it
	for field, want := range map[string]string{
		`{cgroupDrivr: systemd}`: "cgroupDrivr",
		`{maxPods: lots}`:        "maxPods",
	} {
		bad := strings.Replace(src, `{shutdownGracePeriod: 30s, evictionHard."memory.available": 200Mi}`, field, 1)
		_, err := loadPlaybook(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("set %s: want a load error naming %s, got %v", field, want, err)
		}
	}
}

func loadPlaybook(src string) (*playbook.Playbook, error) {
	return playbook.Load("e2e.yaml", []byte(src), modules.Builtin())
}
