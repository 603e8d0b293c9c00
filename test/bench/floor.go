package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// floorMain is the least a Go program must do for the same work: one
// connection per host with known_hosts checked, K sequential sessions per
// host each running `echo stepN`, hosts in parallel.
func floorMain(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	hosts := fs.String("hosts", "", "comma-separated addresses")
	steps := fs.Int("steps", 20, "sessions per host")
	keyFile := fs.String("key", "", "private key")
	khFile := fs.String("known-hosts", "", "known_hosts file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pem, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		return err
	}
	hk, err := knownhosts.New(*khFile)
	if err != nil {
		return err
	}
	cfg := &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, len(strings.Split(*hosts, ",")))
	for _, h := range strings.Split(*hosts, ",") {
		wg.Add(1)
		go func(h string) {
			defer wg.Done()
			errs <- floorHost(net.JoinHostPort(h, "22"), cfg, *steps)
		}(h)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

func floorHost(addr string, cfg *gossh.ClientConfig, steps int) error {
	cl, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	for k := 1; k <= steps; k++ {
		s, err := cl.NewSession()
		if err != nil {
			return err
		}
		out, err := s.Output(fmt.Sprintf("echo step%d", k))
		s.Close()
		if err != nil {
			return err
		}
		if string(out) != fmt.Sprintf("step%d\n", k) {
			return fmt.Errorf("%s: step %d printed %q", addr, k, out)
		}
	}
	return nil
}
