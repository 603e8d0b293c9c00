package local

import (
	"context"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/secret"
)

func TestExec(t *testing.T) {
	ctx := context.Background()
	r, err := Conn{}.Exec(ctx, modules.Cmd{Shell: "echo out; echo err >&2; exit 3"})
	if err != nil || r.RC != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = Conn{}.Exec(ctx, modules.Cmd{Argv: []string{"sh", "-c", `cat; printf %s "$TOKEN"`},
		Stdin: strings.NewReader("in:"), Env: map[string]secret.String{"TOKEN": secret.New("tok")}})
	if err != nil || r.Stdout != "in:tok" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := (Conn{}).Exec(ctx, modules.Cmd{Argv: []string{"/nonexistent/x"}}); err == nil {
		t.Fatal("missing binary should be an error")
	}
}
