package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
)

func playbookFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pb.yaml")
	src := "apiVersion: kubeplay/v1\nkind: Playbook\nname: t\nparams:\n  n: {type: int, default: 1}\nplays:\n  - hosts: localhost\n    steps:\n" + body
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func options(t *testing.T, pb string) Options {
	// no cluster: no kubeconfig anywhere
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("HOME", t.TempDir())
	return Options{Playbook: pb, StateDir: t.TempDir(), Forks: 1, RollbackTimeout: time.Minute,
		Lock: LockOptions{TTL: time.Minute}, View: &events.Recorder{}}
}

// What a run refuses before it starts is a validation error and leaves no
// run directory; a run that ran leaves its record, journal and log, and
// is listed.
func TestRunLeavesItsDirectoryOnlyWhenItRan(t *testing.T) {
	pb := playbookFile(t, "      - debug: {msg: 'n is {{ params.n }}'}\n")
	refusals := map[string]func(*Options){
		"rollback timeout": func(o *Options) { o.RollbackTimeout = 0 },
		"bad param":        func(o *Options) { o.Extra = []string{"n=many"} },
		"unknown step":     func(o *Options) { o.StartAt = "nope" },
		"bad run id":       func(o *Options) { o.Resume = "../x" },
		"no such playbook": func(o *Options) { o.Playbook = "./missing.yaml" },
	}
	for name, change := range refusals {
		t.Run(name, func(t *testing.T) {
			o := options(t, pb)
			change(&o)
			res, err := Run(context.Background(), o)
			if !errors.Is(err, failure.ErrValidation) || res != nil {
				t.Fatalf("want a validation error and no result: %v %+v", err, res)
			}
			if runs, _ := Runs(o.StateDir); len(runs) != 0 {
				t.Fatalf("a refused run left a directory: %+v", runs)
			}
		})
	}
	o := options(t, pb)
	o.Extra = []string{"n=3"}
	res, err := Run(context.Background(), o)
	if err != nil || res.Recap == nil || res.Recap.Totals().OK != 1 {
		t.Fatalf("run: %v %+v", err, res)
	}
	for _, f := range []string{"run.json", "events.jsonl", "log.json"} {
		if st, err := os.Stat(filepath.Join(res.Dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", f, err)
		}
	}
	runs, err := Runs(o.StateDir)
	if err != nil || len(runs) != 1 || runs[0].ID != res.RunID || runs[0].State != "ok" {
		t.Fatalf("runs: %+v %v", runs, err)
	}
}

// MakePlan resolves every play's hosts and batches without connecting.
func TestMakePlan(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inv.yaml")
	os.WriteFile(inv, []byte("groups:\n  workers: {hosts: [w1, w2, w3]}\nhosts:\n  w1: {address: 10.9.0.1}\n  w2: {address: 10.9.0.2}\n  w3: {address: 10.9.0.3}\n"), 0o600)
	pb := filepath.Join(dir, "pb.yaml")
	os.WriteFile(pb, []byte("apiVersion: kubeplay/v1\nkind: Playbook\nname: p\nparams:\n  batch: {type: int, default: 1}\nplays:\n  - hosts: workers\n    serial: '{{ params.batch }}'\n    steps:\n      - debug: {msg: hi}\n"), 0o600)
	plan, err := MakePlan(pb, inv, []string{"batch=2"}, "!w3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Plays) != 1 || len(plan.Plays[0].Batches) != 1 || len(plan.Plays[0].Batches[0]) != 2 || plan.Params["batch"] != 2 {
		t.Fatalf("plan: %+v %+v", plan.Plays, plan.Params)
	}
	if _, err := MakePlan(pb, inv, []string{"batch=x"}, "", nil); !errors.Is(err, failure.ErrValidation) {
		t.Fatalf("a bad param: %v", err)
	}
}
