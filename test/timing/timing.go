// Package timing records how long each phase of a test run took, so that
// .ci/run and make test can print one table at their end: the builds, the
// lab, every test package and the slowest tests.
//
// Rows are appended to the file named by $KUBEPLAY_TIMINGS, one per line:
// phase, seconds, state (tab-separated). Without the variable nothing is
// recorded. Slowest-test rows go to the same path with ".tests" appended.
package timing

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnvVar names the file rows are appended to.
const EnvVar = "KUBEPLAY_TIMINGS"

// Row is one phase of a run.
type Row struct {
	Phase   string
	Seconds float64
	// State says what happened: "built", "cached", "pass", "fail", "ok".
	State string
}

// Record appends a row to the file $KUBEPLAY_TIMINGS names, if any. A
// failure to record is reported to stderr and otherwise ignored: timings
// never fail a run.
func Record(phase string, d time.Duration, state string) {
	path := os.Getenv(EnvVar)
	if path == "" {
		return
	}
	if err := Append(path, Row{Phase: phase, Seconds: d.Seconds(), State: state}); err != nil {
		fmt.Fprintf(os.Stderr, "timing: %v\n", err)
	}
}

// Append adds rows to a timings file. Each row is one short write with
// O_APPEND, so concurrent writers do not interleave within a row.
func Append(path string, rows ...Row) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%.1f\t%s\n", clean(r.Phase), r.Seconds, clean(r.State))
		if _, err := f.WriteString(line); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func clean(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

// Read parses a timings file. A missing file is no rows; a malformed line
// is an error naming it.
func Read(path string) ([]Row, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(f, path)
}

func parse(r io.Reader, name string) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want 3 tab-separated fields, got %d", name, n, len(f))
		}
		s, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: seconds: %w", name, n, err)
		}
		rows = append(rows, Row{Phase: f[0], Seconds: s, State: f[2]})
	}
	return rows, sc.Err()
}

// Table renders phases in the order they were recorded, then the n slowest
// tests (skipped ones aside), then one line counting the tests by outcome.
func Table(w io.Writer, phases, tests []Row, n int) {
	width := len("phase")
	for _, r := range phases {
		width = max(width, len(r.Phase))
	}
	fmt.Fprintf(w, "%-*s  %9s  %s\n", width, "phase", "time", "state")
	for _, r := range phases {
		fmt.Fprintf(w, "%-*s  %9s  %s\n", width, r.Phase, Duration(r.Seconds), r.State)
	}
	if len(tests) == 0 {
		return
	}
	var sorted []Row
	count := map[string]int{}
	for _, r := range tests {
		count[r.State]++
		if r.State != "skip" {
			sorted = append(sorted, r)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seconds > sorted[j].Seconds })
	sorted = sorted[:min(n, len(sorted))]
	fmt.Fprintf(w, "\n%d slowest tests:\n", len(sorted))
	width = 0
	for _, r := range sorted {
		width = max(width, len(r.Phase))
	}
	for _, r := range sorted {
		fmt.Fprintf(w, "%-*s  %9s  %s\n", width, r.Phase, Duration(r.Seconds), r.State)
	}
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped\n", count["pass"], count["fail"], count["skip"])
}

// Duration renders seconds as "1h02m03s", "12m03s" or "4.5s".
func Duration(s float64) string {
	if s < 60 {
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	t := int(s + 0.5)
	if t >= 3600 {
		return fmt.Sprintf("%dh%02dm%02ds", t/3600, t%3600/60, t%60)
	}
	return fmt.Sprintf("%dm%02ds", t/60, t%60)
}
