package timing

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// pkgState buffers one package's test output until its tests end.
type pkgState struct {
	order []string            // top-level tests in the order they started
	out   map[string][]string // top-level test → its output and its subtests'
	ended map[string]bool
}

// Filter reads `go test -json` on r and writes what plain `go test` would:
// build errors, the output of failed tests (with their subtests), the
// ok/FAIL line of each package, and nothing of passed or skipped tests; with verbose, every line (`go test -v`).
// It returns a row per package and a row per top-level test that passed,
// failed or was skipped, and whether anything failed.
func Filter(r io.Reader, w io.Writer, verbose bool) (pkgs, tests []Row, failed bool, err error) {
	state := map[string]*pkgState{}
	get := func(p string) *pkgState {
		s := state[p]
		if s == nil {
			s = &pkgState{out: map[string][]string{}, ended: map[string]bool{}}
			state[p] = s
		}
		return s
	}
	flush := func(s *pkgState, top string) {
		for _, l := range s.out[top] {
			io.WriteString(w, l)
		}
		delete(s.out, top)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil || e.Action == "" {
			// not an event: go's own messages (a build failure's summary)
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		switch e.Action {
		case "build-output":
			io.WriteString(w, e.Output)
			continue
		case "build-fail":
			failed = true
			continue
		}
		s := get(e.Package)
		top, _, _ := strings.Cut(e.Test, "/")
		switch {
		case e.Test == "" && e.Action == "output":
			if verbose || e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				io.WriteString(w, e.Output)
			}
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			if e.Action == "fail" {
				failed = true
				for _, t := range s.order {
					if !s.ended[t] { // cut off: a timeout or a crash
						flush(s, t)
					}
				}
			}
			if e.Action != "skip" { // skip: a package without tests
				pkgs = append(pkgs, Row{Phase: "test " + e.Package, Seconds: e.Elapsed, State: e.Action})
			}
			delete(state, e.Package)
		case e.Action == "run" && e.Test == top:
			s.order = append(s.order, top)
		case e.Action == "output" && verbose:
			io.WriteString(w, e.Output)
		case e.Action == "output":
			s.out[top] = append(s.out[top], e.Output)
		case e.Test == top && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			s.ended[top] = true
			if e.Action == "fail" {
				flush(s, top)
			} else {
				delete(s.out, top) // plain go test shows neither passes nor skips
			}
			tests = append(tests, Row{Phase: e.Package + "." + top, Seconds: e.Elapsed, State: e.Action})
		}
	}
	return pkgs, tests, failed, sc.Err()
}
