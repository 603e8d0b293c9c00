package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kubeplay/kubeplay/failure"
)

// Stamped by `make build` (-ldflags -X main.stampedVersion=... -X
// main.stampedCommit=...); empty otherwise.
var (
	stampedVersion string
	stampedCommit  string
)

// versionInfo is what `kubeplay version` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Go       string `json:"go"`
	ClientGo string `json:"client_go"`
	Etcd     string `json:"etcd_client"`
}

// buildVersion reads the version: the make build stamp first, else the
// module version (go install ...@v1.2.3) and the VCS revision Go records.
func buildVersion(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: stampedVersion, Commit: stampedCommit, Go: runtime.Version()}
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && v.Commit == "" {
			v.Commit = s.Value
		}
		if s.Key == "vcs.modified" && s.Value == "true" && stampedCommit == "" && v.Commit != "" {
			v.Commit += "-dirty"
		}
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		switch d.Path {
		case "k8s.io/client-go":
			v.ClientGo = d.Version
		case "go.etcd.io/etcd/client/v3":
			v.Etcd = d.Version
		}
	}
	for _, f := range []*string{&v.Version, &v.Commit, &v.ClientGo, &v.Etcd} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return v
}

func (v versionInfo) write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "", "text":
		_, err := fmt.Fprintf(w, "kubeplay %s (commit %s)\ngo: %s\nclient-go: %s\netcd client: %s\n", v.Version, v.Commit, v.Go, v.ClientGo, v.Etcd)
		return err
	}
	return fmt.Errorf("%w: -o must be text or json, got %q", failure.ErrValidation, format)
}

func newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kubeplay's version and commit, and those of Go, client-go and the etcd client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return buildVersion(debug.ReadBuildInfo()).write(cmd.OutOrStdout(), format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "text or json")
	return cmd
}
