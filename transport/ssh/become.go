package ssh

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"sync"
)

// ErrBecome means sudo did not run the command: a password is needed and
// none (or a wrong one) was given, or the user may not use sudo. Not retried.
var ErrBecome = errors.New("become (sudo) failed")

// become wraps a command line in sudo for hosts with become: true and a
// login user other than root.
//
// The password, when there is one, goes to sudo's standard input after
// sudo prints its prompt (a random marker, so that it is recognised and
// removed from stderr), never to the command line. The command first prints
// a random start marker: only then is the step's own stdin sent, so sudo
// never reads step data as a password and the command never sees the
// password. Without a password, sudo runs with -n and fails at once instead
// of waiting for one.
type become struct {
	prompt, marker string
	password       []byte // nil: sudo -n

	mu      sync.Mutex
	prompts int
	started chan struct{}
	once    sync.Once
	stdin   io.WriteCloser
}

func newBecome(password string) *become {
	tok := func() string {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	b := &become{prompt: "[kubeplay-sudo-" + tok() + "]", marker: "KUBEPLAY-BECOME-" + tok(), started: make(chan struct{})}
	if password != "" {
		b.password = []byte(password + "\n")
	}
	return b
}

// line is the sudo command line around body (a shell command line).
func (b *become) line(body string) string {
	flags := "-n"
	if b.password != nil {
		// -k: never a cached credential, so the prompt always comes and
		// the password is never left for the command to read
		flags = "-k -S -p " + Quote(b.prompt)
	}
	return "sudo -H " + flags + " -u root -- /bin/sh -c " + Quote("echo "+b.marker+" && "+body)
}

// feed sends the step's stdin once the command has started, then closes it.
func (b *become) feed(stdin io.WriteCloser, data io.Reader, done <-chan struct{}) {
	b.mu.Lock()
	b.stdin = stdin
	b.mu.Unlock()
	select {
	case <-b.started:
	case <-done:
		return
	}
	if data != nil {
		_, _ = io.Copy(stdin, data)
	}
	_ = stdin.Close()
}

func (b *become) hasStarted() bool {
	select {
	case <-b.started:
		return true
	default:
		return false
	}
}

// stdout strips the start marker line and passes the rest to w.
type becomeStdout struct {
	b    *become
	w    io.Writer
	head []byte
}

func (o *becomeStdout) Write(p []byte) (int, error) {
	if o.b.hasStarted() {
		return o.w.Write(p)
	}
	o.head = append(o.head, p...)
	i := bytes.IndexByte(o.head, '\n')
	if i < 0 {
		return len(p), nil
	}
	line, rest := o.head[:i], o.head[i+1:]
	if string(line) != o.b.marker {
		// not ours (cannot happen with sudo); keep everything
		rest = o.head
	}
	o.b.once.Do(func() { close(o.b.started) })
	o.head = nil
	if _, err := o.w.Write(rest); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stderr answers sudo's prompt with the password (once: a second prompt
// means it was wrong, and stdin is closed so sudo gives up) and keeps the
// prompt out of the output.
type becomeStderr struct {
	b   *become
	w   io.Writer
	buf []byte
}

func (e *becomeStderr) Write(p []byte) (int, error) {
	if e.b.hasStarted() || e.b.password == nil {
		return e.w.Write(p)
	}
	e.buf = append(e.buf, p...)
	for {
		i := bytes.Index(e.buf, []byte(e.b.prompt))
		if i < 0 {
			break
		}
		if _, err := e.w.Write(e.buf[:i]); err != nil {
			return 0, err
		}
		e.buf = e.buf[i+len(e.b.prompt):]
		e.b.mu.Lock()
		e.b.prompts++
		n, in := e.b.prompts, e.b.stdin
		e.b.mu.Unlock()
		if in != nil {
			if n == 1 {
				_, _ = in.Write(e.b.password)
			} else {
				_ = in.Close()
			}
		}
	}
	// keep a tail that may be the start of a prompt
	keep := min(len(e.buf), len(e.b.prompt)-1)
	if _, err := e.w.Write(e.buf[:len(e.buf)-keep]); err != nil {
		return 0, err
	}
	e.buf = e.buf[len(e.buf)-keep:]
	return len(p), nil
}

func (e *becomeStderr) flush() { _, _ = e.w.Write(e.buf); e.buf = nil }
