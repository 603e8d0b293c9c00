// Package tty is how kubeplay talks with the operator on the terminal: a
// yes/no question, and a password or passphrase read without echo. Where
// standard input is no terminal, nobody can answer, and each says so.
package tty

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/kubeplay/kubeplay/secret"
)

// Prompter asks yes/no questions on the terminal (pause steps). With Yes
// set (--yes), or without a terminal, it reports that nobody can answer.
type Prompter struct{ Yes bool }

// Confirm asks q and waits for the answer or ctx.
func (p Prompter) Confirm(ctx context.Context, q string) (answer bool, interactive bool, err error) {
	if p.Yes || !term.IsTerminal(int(os.Stdin.Fd())) {
		return false, false, nil
	}
	fmt.Fprintf(os.Stderr, "%s [y/N] ", q)
	ans := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		ans <- strings.TrimSpace(strings.ToLower(line))
	}()
	select {
	case <-ctx.Done():
		return false, true, ctx.Err()
	case a := <-ans:
		return a == "y" || a == "yes", true, nil
	}
}

// Password reads a password without echo after prompt; without a terminal
// it fails with noTTY.
func Password(prompt, noTTY string) (secret.String, error) {
	b, err := read(prompt, noTTY)
	if err != nil {
		return secret.String{}, err
	}
	return secret.New(string(b)), nil
}

// Passphrase asks for an encrypted SSH key's passphrase.
func Passphrase(path string) ([]byte, error) {
	return read("passphrase for "+path+": ", "key "+path+" is encrypted and there is no terminal to ask for its passphrase (use ssh-agent)")
}

func read(prompt, noTTY string) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("%s", noTTY)
	}
	fmt.Fprint(os.Stderr, prompt)
	defer fmt.Fprintln(os.Stderr)
	return term.ReadPassword(fd)
}

// IsTerminal says whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
