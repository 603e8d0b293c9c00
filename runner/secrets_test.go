package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport/local"
)

const tokParam = "params:\n  tok: {type: string, secret: true, required: true}\n"

// The error a run returns (what the CLI prints last) is redacted, and a
// no_log step's details are hidden from it, from events and from run.end.
func TestFinalErrorIsRedactedAndHonoursNoLog(t *testing.T) {
	const tok = "tok-0123456789"
	for _, noLog := range []bool{false, true} {
		h := newHarness()
		h.reg = modules.NewRegistry(modules.Shell{})
		yml := header + tokParam + fmt.Sprintf(`plays:
  - hosts: localhost
    steps:
      - shell: {cmd: 'echo "bad token $T" >&2; exit 1', env: {T: '{{ params.tok }}'}}
        no_log: %v
`, noLog)
		_, err := h.run(t, yml, localInv(t), func(o *Options) {
			o.Local = local.Conn{}
			o.Params = map[string]any{"tok": tok}
		})
		if err == nil || failure.ExitCode(err) != failure.ExitHostFailed {
			t.Fatalf("no_log=%v: want a host failure, got %v", noLog, err)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("no_log=%v: the final error shows the token: %s", noLog, err)
		}
		if !noLog && !strings.Contains(err.Error(), "bad token [REDACTED]") {
			t.Errorf("the final error should show the step's stderr, redacted: %s", err)
		}
		if noLog && (!strings.Contains(err.Error(), "hidden by no_log") || strings.Contains(err.Error(), "bad token")) {
			t.Errorf("no_log: the final error shows the step's details: %s", err)
		}
		for _, ev := range h.rec.Events() {
			s := fmt.Sprintf("%+v", ev)
			if strings.Contains(s, tok) || (noLog && strings.Contains(s, "bad token")) {
				t.Errorf("no_log=%v: event %s shows %s", noLog, ev.Type, s)
			}
		}
	}
}

// A secret in a free-form value would be written as the text [REDACTED]:
// refused when the playbook loads (yaml-edit's value, k8s-patch's patch,
// argv), and when the step runs if only the run shows it is a secret.
func TestSecretInFreeFormValueRefused(t *testing.T) {
	reg := modules.NewRegistry(modules.YAMLEdit{}, modules.K8sPatch{}, modules.Command{})
	for name, step := range map[string]string{
		"yaml-edit": `yaml-edit: {path: /tmp/x.yaml, ops: [{op: set, path: a, value: {pw: '{{ params.tok }}'}}]}`,
		"k8s-patch": `k8s-patch: {kind: ConfigMap, namespace: default, name: x, patch: {data: {pw: '{{ params.tok }}'}}}`,
		"argv":      `command: {argv: [echo, '{{ params.tok }}']}`,
	} {
		yml := header + tokParam + "plays:\n  - hosts: localhost\n    steps:\n      - " + step + "\n"
		_, err := playbook.Load("t.yaml", []byte(yml), reg)
		if err == nil || !strings.Contains(err.Error(), "a secret cannot be used") || !strings.Contains(err.Error(), "t.yaml:") {
			t.Errorf("%s: want a located refusal at load, got %v", name, err)
		}
	}
	// default() hides the type from the compiler: the run refuses it, and
	// the file is not written
	dest := filepath.Join(t.TempDir(), "x.yaml")
	h := newHarness()
	h.reg = modules.NewRegistry(modules.YAMLEdit{})
	yml := header + tokParam + `plays:
  - hosts: localhost
    steps:
      - yaml-edit: {path: ` + dest + `, create: true, ops: [{op: set, path: a, value: {pw: '{{ default(params.tok, "") }}'}}]}
`
	_, err := h.run(t, yml, localInv(t), func(o *Options) {
		o.Local = local.Conn{}
		o.Params = map[string]any{"tok": "tok-0123456789"}
	})
	if err == nil || !strings.Contains(err.Error(), "a secret cannot be used") {
		t.Fatalf("want a refusal at run time, got %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file was written: %v", err)
	}
	if len(h.rec.Filter(events.RunEnd)) != 1 {
		t.Fatal("no run.end")
	}
}

// Credentials in inventory vars and extra vars, which `kubeplay inventory`
// masks, are masked in a run's output too.
func TestInventoryCredentialsAreRedactedInRuns(t *testing.T) {
	inv, err := inventory.Parse("inv.yaml", []byte("groups:\n  nodes:\n    hosts: [h1]\n    vars: {registry_token: inv-tok-123456, region: eu-west}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - debug: {msg: '{{ host.vars.registry_token }} {{ host.vars.ansible_become_password }} {{ host.vars.region }}'}
`
	if _, err := h.run(t, yml, inv, func(o *Options) {
		o.ExtraVars = map[string]any{"ansible_become_password": "extra-pw-98765"}
	}); err != nil {
		t.Fatal(err)
	}
	ends := h.rec.Filter(events.HostEnd)
	if len(ends) != 1 || ends[0].Msg != "[REDACTED] [REDACTED] eu-west" {
		t.Fatalf("debug output %+v", ends)
	}
}

// A secret too short to mask is refused before anything runs.
func TestShortSecretParamRefused(t *testing.T) {
	h := newHarness()
	yml := header + tokParam + "plays:\n  - hosts: nodes\n    steps:\n      - fake: {tag: a}\n"
	_, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.Params = map[string]any{"tok": "ab"} })
	if failure.ExitCode(err) != failure.ExitValidation || !errors.Is(err, secret.ErrTooShort) && !strings.Contains(err.Error(), "at least 3 characters") {
		t.Fatalf("want a validation error, got %v", err)
	}
	if len(h.calls.all()) != 0 {
		t.Fatal("a step ran")
	}
}
