package modules_test

import (
	"context"
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport/local"
)

func target(check bool) *modules.Target {
	return &modules.Target{Host: modules.HostInfo{Name: "localhost"}, Conn: local.Conn{}, Check: check, Clock: modules.RealClock{}}
}

func TestShellCreatesAndCheck(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "done")
	p := &modules.ShellParams{Cmd: "touch " + marker}
	p.Creates = marker
	ytree.FillDefaults(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	sh := modules.Shell{}
	ctx := context.Background()

	r, err := sh.Check(ctx, target(true), p)
	if err != nil || !r.Changed {
		t.Fatalf("check should predict a change: %+v %v", r, err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("check mode ran the command")
	}
	r, err = sh.Run(ctx, target(false), p)
	if err != nil || !r.Changed {
		t.Fatalf("first run: %+v %v", r, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("command did not run")
	}
	r, err = sh.Run(ctx, target(false), p)
	if err != nil || r.Changed {
		t.Fatalf("second run must be unchanged: %+v %v", r, err)
	}
}

func TestCommandExitCodes(t *testing.T) {
	ctx := context.Background()
	p := &modules.CommandParams{Argv: []string{"sh", "-c", "echo oops >&2; exit 4"}}
	_, err := modules.Command{}.Run(ctx, target(false), p)
	if !errors.Is(err, modules.ErrCommandFailed) || !strings.Contains(err.Error(), "exit code 4: oops") {
		t.Fatalf("got %v", err)
	}
	p.ExpectRC = []int{0, 4}
	if r, err := (modules.Command{}).Run(ctx, target(false), p); err != nil || r.RC != 4 {
		t.Fatalf("expect_rc: %+v %v", r, err)
	}
}

func TestShellSecretsViaStdinAndEnv(t *testing.T) {
	p := &modules.ShellParams{Cmd: `read x; printf '%s/%s' "$x" "$PASS"`}
	p.Stdin = secret.New("from-stdin\n")
	p.Env = map[string]secret.String{"PASS": secret.New("from-env")}
	r, err := modules.Shell{}.Run(context.Background(), target(false), p)
	if err != nil || r.Stdout != "from-stdin/from-env" {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestPauseFailsClosed(t *testing.T) {
	ctx := context.Background()
	_, err := modules.Pause{}.Run(ctx, &modules.Target{}, &modules.PauseParams{Prompt: "go?"})
	if !errors.Is(err, modules.ErrDeclined) {
		t.Fatalf("no answer and no default must fail: %v", err)
	}
	yes := true
	if _, err := (modules.Pause{}).Run(ctx, &modules.Target{}, &modules.PauseParams{Prompt: "go?", Default: &yes}); err != nil {
		t.Fatal(err)
	}
}

func TestDescribeParams(t *testing.T) {
	docs := modules.DescribeParams(modules.Shell{})
	names := []string{}
	for _, d := range docs {
		names = append(names, d.Name+":"+d.Type)
	}
	got := strings.Join(names, ",")
	for _, want := range []string{"cmd:string", "creates:string", "env:map of secret", "stdin:secret", "expect_rc:list of int"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in %s", want, got)
		}
	}
}

func TestFactsGatheredOncePerRun(t *testing.T) {
	ctx := context.Background()
	tg := target(false)
	r, err := modules.Facts{}.Run(ctx, tg, &modules.FactsParams{})
	if err != nil || r.Vars["os_family"] == nil {
		t.Fatalf("first gather: %+v %v", r, err)
	}
	// a later facts step of the run reuses them, without touching the host
	tg.Facts, tg.Conn = r.Vars, nil
	again, err := modules.Facts{}.Run(ctx, tg, &modules.FactsParams{})
	if err != nil || again.Msg != "gathered earlier in this run" || again.Data["os_family"] != r.Vars["os_family"] {
		t.Fatalf("second gather: %+v %v", again, err)
	}
	tg.Conn = local.Conn{}
	fresh, err := modules.Facts{}.Run(ctx, tg, &modules.FactsParams{Refresh: true})
	if err != nil || fresh.Vars == nil {
		t.Fatalf("refresh: %+v %v", fresh, err)
	}
}

// Every module's parameters can be described (kubeplay doc MODULE), those
// of map-typed params (set-vars) included.
func TestDescribeParamsOfEveryModule(t *testing.T) {
	reg := modules.Builtin()
	for _, name := range reg.Names() {
		m, _ := reg.Get(name)
		modules.DescribeParams(m) // must not panic
	}
	if d := modules.DescribeParams(modules.SetVars{}); len(d) != 1 || d[0].Name != "NAME" || d[0].Type != "any" {
		t.Fatalf("set-vars: %+v", d)
	}
}
