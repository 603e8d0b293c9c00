package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/test/harness"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// TestModulesThroughBecome runs file, command and fetch steps as a
// non-root login user with become: true and a sudo password: everything
// lands as root, stdin-fed writes arrive intact, and the password is in no
// event.
func TestModulesThroughBecome(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	const pw = "b3come-pw-value"
	l.SudoUsers(t, "w1", pw)
	defer l.Exec(ctx, "w1", "rm -rf /etc/kpb")
	n, _ := l.Node("w1")
	dir := t.TempDir()
	invFile := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(invFile, []byte(`hosts:
  w1: {address: `+n.IP+`, user: ops, become: true, identity_file: `+l.KeyFile()+`}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invFile)
	if err != nil {
		t.Fatal(err)
	}
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: become
plays:
  - hosts: w1
    steps:
      - file: {path: /etc/kpb, state: directory, mode: "0700"}
      - copy: {dest: /etc/kpb/conf, content: "line one\n"}
      - line-edit: {path: /etc/kpb/conf, line: "line two"}
      - command: {argv: [id, -u]}
        register: uid
      - assert: {that: ['uid.stdout == "0\n"']}
      - fetch: {src: /etc/kpb/conf, dest: ` + filepath.Join(dir, "conf") + `}
`
	r := harness.RunWith(ctx, t, l, inv, "become.yaml", []byte(src), func(o *runner.Options) {
		o.Connector = ssh.NewConnector(ssh.Options{KnownHosts: l.KnownHostsFile(), BecomePassword: secret.New(pw)})
	})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	got, _ := l.Exec(ctx, "w1", "stat -c '%U %a' /etc/kpb /etc/kpb/conf; cat /etc/kpb/conf")
	if got != "root 700\nroot 644\nline one\nline two\n" {
		t.Fatalf("on the node:\n%s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "conf")); string(b) != "line one\nline two\n" {
		t.Fatalf("fetched %q", b)
	}
	for _, e := range r.Rec.Events() {
		if strings.Contains(e.Msg+e.Error+e.Diff, pw) {
			t.Fatalf("the become password reached an event: %+v", e)
		}
	}
}
