package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/schema"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the playbook format (for editors: # yaml-language-server: $schema=FILE)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeSchema(cmd.OutOrStdout())
		},
	}
}

func writeSchema(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(schema.Playbook(modules.Builtin()))
}
