package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/transport/local"
)

// A step delegated to localhost is undone on the runner, never on the host
// it was listed for.
func TestUndoRunsOnTheConnectionTheStepUsed(t *testing.T) {
	h := newHarness()
	yml := header + `plays:
  - hosts: nodes
    steps:
      - fakeundo: {tag: here}
      - fakeundo: {tag: there}
        delegate_to: localhost
      - fake: {tag: boom, fail_on: [h1]}
`
	_, err := h.run(t, yml, hostsInv(t, 1), func(o *Options) { o.Local = fakeConn{name: "local"} })
	if err == nil {
		t.Fatal("want a failure")
	}
	got, want := h.undoOn.all(), []string{"h1:there@local", "h1:here@ssh:h1"}
	if !slices.Equal(got, want) {
		t.Fatalf("undo connections\n got %v\nwant %v", got, want)
	}
}

func localInv(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse("inv.yaml", []byte("hosts: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// copyThen is a playbook for the implicit localhost: a real copy to a new
// file, then the fake step given; it returns the harness and the file.
func copyThen(t *testing.T, then string) (*harness, string, string) {
	dest := filepath.Join(t.TempDir(), "made-by-kubeplay.conf")
	h := newHarness()
	h.reg = modules.NewRegistry(newFake(h.calls, "fake"), modules.Copy{})
	return h, dest, header + `plays:
  - hosts: localhost
    steps:
      - copy: {dest: ` + dest + `, content: "x=1\n"}
      - fake: ` + then + "\n"
}

// On the implicit localhost the real copy module's Undo gets the local
// connection: the file it created is removed, and nothing panics.
func TestCopyOnLocalhostIsUndoneLocally(t *testing.T) {
	h, dest, yml := copyThen(t, "{tag: boom, fail_on: [localhost]}")
	_, err := h.run(t, yml, localInv(t), func(o *Options) { o.Local = local.Conn{} })
	var re *failure.RunError
	if !errors.As(err, &re) || failure.ExitCode(err) != failure.ExitHostFailed {
		t.Fatalf("want a host failure (exit 3), got %v (exit %d)", err, failure.ExitCode(err))
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy was not undone: stat %v", err)
	}
	rb := h.rec.Filter(events.RollbackEnd)
	if len(rb) != 1 || rb[0].Outcome != events.RolledBack {
		t.Fatalf("rollback events %+v", rb)
	}
	if len(h.rec.Filter(events.RunEnd)) != 1 {
		t.Fatal("no run.end")
	}
}

// Ctrl-C during a later step on localhost rolls the copy back locally.
func TestInterruptOnLocalhostUndoesLocally(t *testing.T) {
	h, dest, yml := copyThen(t, "{tag: long, block: true}")
	pb, err := playbook.Load("t.yaml", []byte(yml), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sink := events.Multi{h.rec, sinkFunc(func(e events.Event) {
		if e.Type == events.StepStart && e.StepIdx == 1 {
			cancel()
		}
	})}
	_, err = Run(ctx, pb, localInv(t), Options{Sink: sink, Clock: h.clock, Local: local.Conn{}})
	if failure.ExitCode(err) != failure.ExitInterrupted {
		t.Fatalf("want interrupted, got %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy was not undone: stat %v", err)
	}
}
