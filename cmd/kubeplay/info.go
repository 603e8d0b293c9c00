package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/session"
)

func newValidateCmd() *cobra.Command {
	var inv string
	return &cobra.Command{
		Use:   "validate PLAYBOOK|BUNDLED_NAME...",
		Short: "Validate playbooks (and an inventory) without touching any host",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var firstErr error
			for _, ref := range args {
				if _, err := session.LoadPlaybook(ref); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", ref, err)
					if firstErr == nil {
						firstErr = fmt.Errorf("%w: %s", failure.ErrValidation, ref)
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", ref)
			}
			if inv != "" {
				if _, err := session.LoadInventory(inv); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", inv)
			}
			return firstErr
		},
	}
}

func newPlanCmd() *cobra.Command {
	var invPath, limit string
	var extra []string
	cmd := &cobra.Command{
		Use:   "plan PLAYBOOK|BUNDLED_NAME",
		Short: "Print the resolved order of plays, batches, hosts and steps; opens no connection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := session.MakePlan(args[0], invPath, extra, limit)
			if err != nil {
				return err
			}
			writePlan(cmd.OutOrStdout(), plan)
			return nil
		},
	}
	cmd.Flags().StringVarP(&invPath, "inventory", "i", "", "inventory file")
	cmd.Flags().StringVarP(&limit, "limit", "l", "", "further limit hosts with a pattern")
	cmd.Flags().StringArrayVarP(&extra, "extra", "e", nil, "param: key=value or @file.yaml")
	return cmd
}

func writePlan(w io.Writer, plan *session.Plan) {
	fmt.Fprintf(w, "PLAYBOOK %s\n", plan.Playbook.Name)
	for _, k := range slices.Sorted(maps.Keys(plan.Params)) {
		fmt.Fprintf(w, "  param %s = %v\n", k, plan.Params[k])
	}
	for _, p := range plan.Plays {
		fmt.Fprintf(w, "\nPLAY %s (hosts: %s, max_fail_percentage: %d)\n", p.Name, p.Pattern, p.MaxFailPct)
		for i, b := range p.Batches {
			fmt.Fprintf(w, "  BATCH %d: %s\n", i+1, strings.Join(b, ", "))
		}
		section := func(title string, steps []*playbook.Step) {
			for i, s := range steps {
				args, _ := s.Params.Plain(nil)
				b, _ := yaml.MarshalWithOptions(args, yaml.Flow(true))
				fmt.Fprintf(w, "  %s %d. %s: %s %s\n", title, i+1, s.Title(), s.Module.Name(), strings.TrimSpace(string(b)))
				for _, rb := range s.Rollback {
					fmt.Fprintf(w, "       rollback: %s\n", rb.Title())
				}
			}
		}
		section("STEP", p.Steps)
		section("RESCUE", p.Rescue)
		section("ALWAYS", p.Always)
		section("HANDLER", p.Handlers)
	}
}

func newPlaybooksCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "playbooks",
		Short: "List the bundled playbooks",
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			for _, n := range playbooks.Names() {
				pb, err := session.LoadPlaybook(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\n", n, pb.Description)
			}
			return tw.Flush()
		},
	}
}

func newShowCmd() *cobra.Command {
	var doc bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a bundled playbook (to customise it) or its documentation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := playbooks.Source(args[0])
			if err != nil {
				return fmt.Errorf("%w: %w", failure.ErrValidation, err)
			}
			if doc {
				fmt.Fprint(cmd.OutOrStdout(), playbooks.Doc(args[0]))
				return nil
			}
			_, err = cmd.OutOrStdout().Write(src)
			return err
		},
	}
	cmd.Flags().BoolVar(&doc, "doc", false, "print the playbook's documentation instead")
	return cmd
}

func newInventoryCmd() *cobra.Command {
	var invPath, limit string
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Print the resolved hosts, groups and variables (secret-looking values masked)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := session.LoadInventory(invPath)
			if err != nil {
				return err
			}
			hosts := inv.HostNames()
			if limit != "" {
				if hosts, err = inv.Match(limit); err != nil {
					return fmt.Errorf("%w: %w", failure.ErrValidation, err)
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, "groups:")
			for _, g := range inv.GroupNames() {
				fmt.Fprintf(w, "  %s: [%s]\n", g, strings.Join(inv.GroupHosts(g), ", "))
			}
			fmt.Fprintln(w, "hosts:")
			for _, n := range hosts {
				h, _ := inv.Host(n)
				jump := ""
				if len(h.Jumps) > 0 {
					hops := make([]string, len(h.Jumps))
					for i, j := range h.Jumps {
						hops[i] = j.Address
						if j.User != "" {
							hops[i] = j.User + "@" + hops[i]
						}
						if j.Port != 0 {
							hops[i] += fmt.Sprintf(":%d", j.Port)
						}
					}
					jump = ", proxy_jump: " + strings.Join(hops, ",")
				}
				fmt.Fprintf(w, "  %s: {address: %s, port: %d, user: %s, node_name: %s, become: %v%s}\n",
					n, h.Address, h.Port, h.User, h.NodeName, h.Become, jump)
				vars := inv.HostVars(n)
				keys := make([]string, 0, len(vars))
				for k := range vars {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					v := vars[k]
					if inventory.IsSecretVar(k) {
						v = secret.Redacted
					}
					fmt.Fprintf(w, "    %s: %v\n", k, v)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&invPath, "inventory", "i", "", "inventory file")
	cmd.Flags().StringVarP(&limit, "limit", "l", "", "only hosts matching this pattern")
	_ = cmd.MarkFlagRequired("inventory")
	return cmd
}

func newModulesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "modules",
		Short: "List the step modules",
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := modules.Builtin()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			for _, n := range reg.Names() {
				m, _ := reg.Get(n)
				fmt.Fprintf(tw, "%s\t%s\n", n, firstSentence(m.Doc()))
			}
			return tw.Flush()
		},
	}
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

func newDocCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "doc MODULE",
		Short: "Document a module's parameters (generated from its typed params)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ok := modules.Builtin().Get(args[0])
			if !ok {
				return fmt.Errorf("%w: no module %q", failure.ErrValidation, args[0])
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s\n\n%s\n\n", m.Name(), m.Doc())
			if caps := modules.Capabilities(m); len(caps) > 0 {
				fmt.Fprintf(w, "Supports: %s\n\n", strings.Join(caps, ", "))
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PARAM\tTYPE\tREQUIRED\tDEFAULT\tDESCRIPTION")
			for _, p := range modules.DescribeParams(m) {
				fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", p.Name, p.Type, p.Required, p.Default, p.Doc)
			}
			return tw.Flush()
		},
	}
}
