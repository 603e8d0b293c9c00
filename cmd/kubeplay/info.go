package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
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
	var invPath string
	var extra, roles []string
	cmd := &cobra.Command{
		Use:   "validate PLAYBOOK|BUNDLED_NAME...",
		Short: "Validate playbooks (and, with -i, every play's hosts and roles on an inventory) without touching any host",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var inv *inventory.Inventory
			if invPath != "" {
				var err error
				if inv, err = session.LoadInventory(invPath); err != nil {
					return err
				}
				rf, err := session.ParseRoles(roles)
				if err != nil {
					return err
				}
				if err := inv.ResolveRoles(inventory.RoleSources{Flags: rf}); err != nil {
					return fmt.Errorf("%w: %s: %w", failure.ErrValidation, invPath, err)
				}
				fmt.Fprintf(out, "%s: ok\n", invPath)
			}
			ex, err := session.ParseExtra(extra)
			if err != nil {
				return err
			}
			var firstErr error
			for _, ref := range args {
				err := validateOne(out, ref, inv, ex)
				if err != nil {
					fmt.Fprintf(errOut, "%s: %v\n", ref, err)
					if firstErr == nil {
						firstErr = fmt.Errorf("%w: %s", failure.ErrValidation, ref)
					}
				}
			}
			return firstErr
		},
	}
	cmd.Flags().StringVarP(&invPath, "inventory", "i", "", "also resolve every play's hosts and roles on this inventory (no connection is opened)")
	cmd.Flags().StringArrayVarP(&extra, "extra", "e", nil, "param: key=value or @file.yaml (hosts templated on params resolve with them)")
	roleFlag(cmd.Flags(), &roles)
	return cmd
}

// validateOne validates a playbook and, on an inventory, resolves its
// plays' hosts.
func validateOne(w io.Writer, ref string, inv *inventory.Inventory, extra map[string]any) error {
	pb, err := session.LoadPlaybook(ref)
	if err != nil {
		return err
	}
	if inv == nil {
		fmt.Fprintf(w, "%s: ok\n", ref)
		return nil
	}
	params, _ := session.SplitExtra(pb, extra)
	plays, unresolved, err := session.PlaysOn(pb, inv, params)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: ok\n", ref)
	for _, p := range plays {
		var hosts []string
		for _, b := range p.Batches {
			hosts = append(hosts, b...)
		}
		fmt.Fprintf(w, "  play %q (%s): %s\n", p.Name, p.Pattern, strings.Join(hosts, ", "))
	}
	for _, u := range unresolved {
		fmt.Fprintf(w, "  %s\n", u)
	}
	return nil
}

func newPlanCmd() *cobra.Command {
	var invPath, limit string
	var extra, roles []string
	cmd := &cobra.Command{
		Use:   "plan PLAYBOOK|BUNDLED_NAME",
		Short: "Print the resolved order of plays, batches, hosts and steps; opens no connection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plan, err := session.MakePlan(args[0], invPath, extra, limit, roles)
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
	roleFlag(cmd.Flags(), &roles)
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
	var roles []string
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Print the resolved roles, groups, hosts and variables (secret-looking values masked)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needInventory(invPath); err != nil {
				return err
			}
			inv, err := session.LoadInventory(invPath)
			if err != nil {
				return err
			}
			rf, err := session.ParseRoles(roles)
			if err != nil {
				return err
			}
			if err := inv.ResolveRoles(inventory.RoleSources{Flags: rf}); err != nil {
				return fmt.Errorf("%w: %w", failure.ErrValidation, err)
			}
			hosts := inv.HostNames()
			if limit != "" {
				if hosts, err = inv.Match(limit); err != nil {
					return fmt.Errorf("%w: %w", failure.ErrValidation, err)
				}
			}
			w := cmd.OutOrStdout()
			rs, err := inv.Roles()
			if err != nil {
				return fmt.Errorf("%w: %w", failure.ErrValidation, err)
			}
			writeRoles(w, rs)
			fmt.Fprintln(w, "groups:")
			for _, g := range inv.GroupNames() {
				fmt.Fprintf(w, "  %s: [%s]\n", g, strings.Join(inv.GroupHosts(g), ", "))
			}
			fmt.Fprintln(w, "hosts:")
			for _, n := range hosts {
				writeHost(w, inv, n)
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVarP(&invPath, "inventory", "i", os.Getenv("KUBEPLAY_INVENTORY"), "inventory file (default $KUBEPLAY_INVENTORY)")
	cmd.Flags().StringVarP(&limit, "limit", "l", "", "only hosts matching this pattern")
	roleFlag(cmd.PersistentFlags(), &roles)
	cmd.AddCommand(newInventoryCheckCmd(&invPath, &roles), newInventoryFromClusterCmd())
	return cmd
}

// writeRoles prints each role's hosts and where they came from (or what
// was tried).
func writeRoles(w io.Writer, rs []inventory.Role) {
	fmt.Fprintln(w, "roles:")
	for _, r := range rs {
		if len(r.Hosts) == 0 {
			fmt.Fprintf(w, "  %s: []  # none (tried: %s)\n", r.Name, strings.Join(r.Tried, "; "))
			continue
		}
		fmt.Fprintf(w, "  %s: [%s]  # from %s\n", r.Name, strings.Join(r.Hosts, ", "), r.From)
	}
}

func writeHost(w io.Writer, inv *inventory.Inventory, n string) {
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
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		v := vars[k]
		if inventory.IsSecretVar(k) {
			v = secret.Redacted
		}
		fmt.Fprintf(w, "    %s: %v\n", k, v)
	}
}

func newInventoryCheckCmd(invPath *string, roles *[]string) *cobra.Command {
	var access accessFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Compare the inventory with the cluster's Node objects: names, addresses, roles, Nodes no host covers",
		Long: `Compare the inventory with the cluster's Node objects. Reports a host whose
node_name is no Node, a Node no host covers, a host address that is not among
its Node's addresses, and a role that disagrees with the Node's
node-role.kubernetes.io/control-plane label.

Exit codes: 0 when they agree, 2 on any mismatch (or an invalid inventory),
5 when the cluster cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needInventory(*invPath); err != nil {
				return err
			}
			kube, sshOpts, err := access.options()
			if err != nil {
				return err
			}
			rep, err := session.CheckInventoryAgainstCluster(cmd.Context(), session.Access{Inventory: *invPath, Roles: *roles, Kube: kube, SSH: sshOpts})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			writeRoles(w, rep.Roles)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "\nHOST\tNODE\tMISMATCH")
			for _, m := range rep.Mismatches {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", dash(m.Host), dash(m.Node), m.What)
			}
			_ = tw.Flush()
			if len(rep.Mismatches) > 0 {
				return fmt.Errorf("%w: the inventory disagrees with the cluster's %d Nodes in %d places", failure.ErrValidation, len(rep.Nodes), len(rep.Mismatches))
			}
			fmt.Fprintf(w, "the inventory agrees with the cluster's %d Nodes\n", len(rep.Nodes))
			return nil
		},
	}
	access.add(cmd.Flags())
	return cmd
}

// needInventory refuses an inventory command without an inventory.
func needInventory(path string) error {
	if path == "" {
		return fmt.Errorf("%w: give the inventory with -i (or KUBEPLAY_INVENTORY)", failure.ErrValidation)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newInventoryFromClusterCmd() *cobra.Command {
	var access accessFlags
	var out string
	cmd := &cobra.Command{
		Use:   "from-cluster",
		Short: "Write a kubeplay inventory from the cluster's Nodes (InternalIP addresses, node_name, control_plane and workers groups)",
		Long: `Write a kubeplay inventory from the cluster's Node objects: a host per Node
with its InternalIP as address and its node_name, and the groups
control_plane, workers and nodes (from the node-role.kubernetes.io/control-plane
label). SSH settings are left to the defaults and ~/.ssh/config.

Exit codes: 0, 2 when the cluster has no Nodes, 5 when it cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kube, sshOpts, err := access.options()
			if err != nil {
				return err
			}
			b, err := session.InventoryFromCluster(cmd.Context(), kube, sshOpts)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "-", "file to write (- for stdout)")
	access.add(cmd.Flags())
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
