package timing

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestFilterPrintsWhatPlainGoTestWould(t *testing.T) {
	stream := strings.Join([]string{
		`{"Action":"start","Package":"p/a"}`,
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"    quiet log\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK","Elapsed":1.5}`,
		`{"Action":"run","Package":"p/a","Test":"TestBad"}`,
		`{"Action":"run","Package":"p/a","Test":"TestBad/sub"}`,
		`{"Action":"output","Package":"p/a","Test":"TestBad/sub","Output":"    sub says why\n"}`,
		`{"Action":"fail","Package":"p/a","Test":"TestBad/sub","Elapsed":2}`,
		`{"Action":"output","Package":"p/a","Test":"TestBad","Output":"--- FAIL: TestBad (2.00s)\n"}`,
		`{"Action":"fail","Package":"p/a","Test":"TestBad","Elapsed":2.25}`,
		`{"Action":"output","Package":"p/a","Output":"FAIL\n"}`,
		`{"Action":"output","Package":"p/a","Output":"FAIL\tp/a\t3.8s\n"}`,
		`{"Action":"fail","Package":"p/a","Elapsed":3.8}`,
		`{"Action":"run","Package":"p/b","Test":"TestHang"}`,
		`{"Action":"output","Package":"p/b","Test":"TestHang","Output":"    last words\n"}`,
		`{"Action":"output","Package":"p/b","Output":"panic: test timed out\n"}`,
		`{"Action":"fail","Package":"p/b","Elapsed":60}`,
		`{"Action":"run","Package":"p/c","Test":"TestSkipped"}`,
		`{"Action":"output","Package":"p/c","Test":"TestSkipped","Output":"--- SKIP: TestSkipped (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/c","Test":"TestSkipped"}`,
		`{"Action":"output","Package":"p/c","Output":"PASS\n"}`,
		`{"Action":"output","Package":"p/c","Output":"ok  \tp/c\t0.1s\n"}`,
		`{"Action":"pass","Package":"p/c","Elapsed":0.1}`,
		`{"Action":"output","Package":"p/e","Output":"?   \tp/e\t[no test files]\n"}`,
		`{"Action":"skip","Package":"p/e","Elapsed":0}`,
		`{"ImportPath":"p/d","Action":"build-output","Output":"d.go:1: syntax error\n"}`,
		`{"ImportPath":"p/d","Action":"build-fail"}`,
		`FAIL	p/d [build failed]`,
	}, "\n")
	var out bytes.Buffer
	pkgs, tests, failed, err := Filter(strings.NewReader(stream), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("a failed package and a build failure: want failed")
	}
	got := out.String()
	for _, want := range []string{"sub says why", "--- FAIL: TestBad", "FAIL\tp/a\t3.8s", "last words", "panic: test timed out", "ok  \tp/c\t0.1s", "d.go:1: syntax error", "FAIL\tp/d [build failed]"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"quiet log", "=== RUN", "PASS\n", "SKIP"} {
		if strings.Contains(got, not) {
			t.Errorf("output has %q, which plain go test hides:\n%s", not, got)
		}
	}
	wantPkgs := []Row{{"test p/a", 3.8, "fail"}, {"test p/b", 60, "fail"}, {"test p/c", 0.1, "pass"}}
	if len(pkgs) != len(wantPkgs) {
		t.Fatalf("packages: %v, want %v", pkgs, wantPkgs)
	}
	for i := range pkgs {
		if pkgs[i] != wantPkgs[i] {
			t.Errorf("package row %d: %v, want %v", i, pkgs[i], wantPkgs[i])
		}
	}
	if len(tests) != 3 || tests[0] != (Row{"p/a.TestOK", 1.5, "pass"}) || tests[1] != (Row{"p/a.TestBad", 2.25, "fail"}) || tests[2].State != "skip" {
		t.Errorf("tests: %v", tests)
	}
}

func TestRecordReadTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.tsv")
	t.Setenv(EnvVar, path)
	if err := Append(path, Row{"build kube v1.36.3", 754.2, "built"}, Row{"lab: node image", 0, "cached"}); err != nil {
		t.Fatal(err)
	}
	rows, err := Read(path)
	if err != nil || len(rows) != 2 || rows[0].Seconds != 754.2 || rows[1].State != "cached" {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	var out bytes.Buffer
	Table(&out, rows, []Row{{"a.T1", 1, "pass"}, {"a.T2", 30, "pass"}, {"a.T3", 3700, "fail"}, {"a.T4", 9999, "skip"}}, 2)
	got := out.String()
	for _, want := range []string{"build kube v1.36.3     12m34s  built", "lab: node image          0.0s  cached", "2 slowest tests:", "a.T3   1h01m40s  fail", "a.T2      30.0s  pass", "\ntests: 2 passed, 1 failed, 1 skipped\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "a.T1") || strings.Contains(got, "a.T4") {
		t.Errorf("table lists more than the 2 slowest, or a skipped test:\n%s", got)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); err != nil {
		t.Errorf("a missing file is no rows, got %v", err)
	}
}
