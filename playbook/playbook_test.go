package playbook

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/modules"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestBadPlaybooksGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 5 {
		t.Fatalf("fixtures missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := LoadFile(f, modules.Builtin())
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, failure.ErrValidation) {
				t.Fatalf("not a validation error: %v", err)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run with -update)", rerr)
			}
			if got != string(want) {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestGoodPlaybook(t *testing.T) {
	src := `apiVersion: kubeplay/v1
kind: Playbook
name: good
description: d
params:
  version: {type: version, required: true, pattern: '^1\.\d+\.\d+$'}
  batch: {type: string, default: "1"}
  wait: {type: duration, default: 5m}
  mode: {type: string, enum: [fast, safe], default: safe}
vars:
  minor: '{{ minorOf(params.version) }}'
  next: '{{ nextMinor(vars.minor) }}'
  label: 'v{{ vars.minor }}'
plays:
  - name: p
    hosts: all
    serial: [1, "25%"]
    steps:
      - debug: {msg: '{{ vars.next }} {{ params.wait }}'}
        register: out
        when: 'versionCompare(params.version, "1.36.0") >= 0 && semver(params.version).minor > 30'
      - wait: {until: 'out.ran', timeout: 1m}
        changed_when: false
`
	pb, err := Load("good.yaml", []byte(src), modules.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.Plays) != 1 || len(pb.Plays[0].Steps) != 2 || pb.Plays[0].Serial[1].N != 25 || !pb.Plays[0].Serial[1].Percent {
		t.Fatalf("unexpected shape %+v", pb.Plays[0])
	}
	if _, err := pb.ResolveParams(map[string]any{"version": "1.37.2"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{
		{},
		{"version": "1.37"},
		{"version": "1.37.2", "mode": "yolo"},
		{"version": "1.37.2", "nope": "x"},
		{"version": "1.37.2", "wait": "soon"},
	} {
		if _, err := pb.ResolveParams(bad); err == nil {
			t.Errorf("params %v accepted", bad)
		}
	}
}

// ParamTypes (what the schema offers) are exactly the types the loader
// accepts.
func TestParamTypesAreTheLoaders(t *testing.T) {
	for _, pt := range ParamTypes() {
		if _, ok := goType(pt); !ok {
			t.Errorf("ParamTypes lists %q, which the loader refuses", pt)
		}
	}
	if _, ok := goType("semver"); ok {
		t.Error("goType accepts an unknown type")
	}
}
