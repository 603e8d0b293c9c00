package ssh_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/test/lab"
	"github.com/kubeplay/kubeplay/transport"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

func TestLabBecome(t *testing.T) {
	l := lab.Start(t)
	ctx := context.Background()
	n, _ := l.Node("w1")
	const pw = "Sud0-pa55'word $(x)"
	l.SudoUsers(t, n.Name, pw)
	as := func(user string, become bool, password string) transport.Conn {
		t.Helper()
		h := labHost(l, n)
		h.User, h.Become = user, become
		conn, err := connector(l, func(o *ssh.Options) { o.BecomePassword = secret.New(password) }).Connect(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.(interface{ Close() error }).Close() })
		return conn
	}

	// with the password: root, the step's stdin intact, the password in
	// no argv while the command runs
	conn := as("ops", true, pw)
	type res struct {
		r   transport.ExecResult
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := conn.Exec(ctx, transport.Cmd{Shell: `id -u; sleep 2; cat`, Stdin: strings.NewReader("step data\n")})
		done <- res{r, err}
	}()
	// look while the command runs (its sleep is up)
	var ps string
	for i := 0; i < 50 && !strings.Contains(ps, "sleep 2"); i++ {
		time.Sleep(50 * time.Millisecond)
		ps, _ = l.Exec(ctx, n.Name, "ps -eo args")
	}
	if strings.Contains(ps, "pa55") {
		t.Fatalf("the become password is on a command line:\n%s", ps)
	}
	if !strings.Contains(ps, "sudo -H -k -S") {
		t.Fatalf("the command does not run through sudo:\n%s", ps)
	}
	got := <-done
	if got.err != nil || got.r.RC != 0 || got.r.Stdout != "0\nstep data\n" || strings.Contains(got.r.Stderr, "kubeplay-sudo") {
		t.Fatalf("become with a password: %+v %v", got.r, got.err)
	}
	// a file only root may read
	rf := conn.(interface {
		ReadFile(context.Context, string) ([]byte, error)
	})
	if b, err := rf.ReadFile(ctx, "/etc/shadow"); err != nil || !strings.Contains(string(b), "ops:") {
		t.Fatalf("ReadFile through sudo: %v", err)
	}
	// environment values reach the root command
	r, err := conn.Exec(ctx, transport.Cmd{Shell: `echo "$TOKEN"`, Env: map[string]secret.String{"TOKEN": secret.New("tok")}})
	if err != nil || r.Stdout != "tok\n" {
		t.Fatalf("env through sudo: %+v %v", r, err)
	}

	// NOPASSWD: no password needed
	if r, err := as("nopw", true, "").Exec(ctx, transport.Cmd{Argv: []string{"id", "-u"}}); err != nil || r.Stdout != "0\n" {
		t.Fatalf("nopasswd become: %+v %v", r, err)
	}
	// become: false stays the login user
	if r, err := as("ops", false, pw).Exec(ctx, transport.Cmd{Argv: []string{"id", "-un"}}); err != nil || r.Stdout != "ops\n" {
		t.Fatalf("no become: %+v %v", r, err)
	}

	// a wrong password and a missing one fail at once with ErrBecome, not
	// retryable, and the password is not in the error
	for name, p := range map[string]string{"wrong password": "nope-" + pw, "no password": ""} {
		start := time.Now()
		_, err := as("ops", true, p).Exec(ctx, transport.Cmd{Argv: []string{"id", "-u"}})
		if !errors.Is(err, ssh.ErrBecome) || failure.IsRetryable(err) {
			t.Fatalf("%s: want a final ErrBecome, got %v", name, err)
		}
		if strings.Contains(fmt.Sprint(err), "pa55") {
			t.Fatalf("%s: the password is in the error: %v", name, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("%s: took %s", name, d)
		}
		t.Logf("%s: %v", name, err)
	}
}
