// Command timing times the phases of a test run and prints them as a table.
//
//	timing run PHASE -- CMD ARGS...   run a command, record its wall time
//	go test -json ./... | timing gotest [-v]
//	                                  print what plain go test (-v) would,
//	                                  record each package and top-level test
//	timing table                      print the phases and the 10 slowest tests
//
// Rows go to $KUBEPLAY_TIMINGS (see package timing).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/kubeplay/kubeplay/test/timing"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	path := os.Getenv(timing.EnvVar)
	switch os.Args[1] {
	case "run":
		if len(os.Args) < 5 || os.Args[3] != "--" {
			usage()
		}
		start := time.Now()
		cmd := exec.Command(os.Args[4], os.Args[5:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		state := "ok"
		if err != nil {
			state = "fail"
		}
		timing.Record(os.Args[2], time.Since(start), state)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "gotest":
		verbose := len(os.Args) > 2 && os.Args[2] == "-v"
		pkgs, tests, failed, err := timing.Filter(os.Stdin, os.Stdout, verbose)
		if path != "" {
			if err := timing.Append(path, pkgs...); err != nil {
				fmt.Fprintln(os.Stderr, "timing:", err)
			}
			if err := timing.Append(path+".tests", tests...); err != nil {
				fmt.Fprintln(os.Stderr, "timing:", err)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "timing: reading go test -json:", err)
			os.Exit(1)
		}
		if failed {
			os.Exit(1)
		}
	case "table":
		if path == "" {
			fmt.Fprintln(os.Stderr, "timing: $"+timing.EnvVar+" is not set")
			os.Exit(2)
		}
		phases, err := timing.Read(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "timing:", err)
			os.Exit(1)
		}
		tests, err := timing.Read(path + ".tests")
		if err != nil {
			fmt.Fprintln(os.Stderr, "timing:", err)
			os.Exit(1)
		}
		timing.Table(os.Stdout, phases, tests, 10)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: timing run PHASE -- CMD... | timing gotest [-v] | timing table")
	os.Exit(2)
}
