package main

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	// go install github.com/kubeplay/kubeplay/cmd/kubeplay@v0.4.0
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/kubeplay/kubeplay", Version: "v0.4.0"},
		Deps: []*debug.Module{
			{Path: "k8s.io/client-go", Version: "v0.37.2"},
			{Path: "go.etcd.io/etcd/client/v3", Version: "v3.7.0", Replace: &debug.Module{Path: "go.etcd.io/etcd/client/v3", Version: "v3.7.1"}},
		},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}},
	}
	got := buildVersion(bi, true)
	want := versionInfo{Version: "v0.4.0", Commit: "abc123-dirty", Go: runtime.Version(), ClientGo: "v0.37.2", Etcd: "v3.7.1"}
	if got != want {
		t.Errorf("from the build info: %+v, want %+v", got, want)
	}
	if got := buildVersion(nil, false); got.Version != "unknown" || got.ClientGo != "unknown" || got.Go != runtime.Version() {
		t.Errorf("without build info: %+v", got)
	}

	// the command, in both formats, and --version
	out, code := run(t, "version", "-o", "json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Go != runtime.Version() || !strings.HasPrefix(v.ClientGo, "v0.") || !strings.HasPrefix(v.Etcd, "v3.") {
		t.Fatalf("version -o json: exit %d: %s", code, out)
	}
	out, code = run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "kubeplay ") || !strings.Contains(out, "client-go: "+v.ClientGo) {
		t.Errorf("version: exit %d: %s", code, out)
	}
	out, code = run(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "kubeplay "+v.Version+" (commit ") {
		t.Errorf("--version: exit %d: %s", code, out)
	}
	if _, code = run(t, "version", "-o", "yaml"); code != 2 {
		t.Errorf("version -o yaml: exit %d, want 2", code)
	}
}
