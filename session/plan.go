package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/inventory"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/runner"
)

// Plan is a playbook's resolved order on an inventory: what `kubeplay
// plan` prints. Making it opens no connection.
type Plan struct {
	Playbook *playbook.Playbook
	Params   map[string]any // every param, given or defaulted
	Plays    []PlannedPlay
}

// PlannedPlay is one play: its host pattern as rendered and its batches.
type PlannedPlay struct {
	*playbook.Play
	Pattern string
	Batches [][]string
}

// MakePlan loads the playbook ref and the inventory, resolves the roles
// (from the inventory and --role: a plan opens no connection, so not from
// the cluster) and the params from extra (-e), and cuts every play's hosts
// into its batches.
func MakePlan(ref, inventoryPath string, extra []string, limit string, roleFlags []string) (*Plan, error) {
	pb, err := LoadPlaybook(ref)
	if err != nil {
		return nil, err
	}
	inv, err := LoadInventory(inventoryPath)
	if err != nil {
		return nil, err
	}
	roles, err := ParseRoles(roleFlags)
	if err != nil {
		return nil, err
	}
	if err := inv.ResolveRoles(inventory.RoleSources{Flags: roles}); err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	ex, err := ParseExtra(extra)
	if err != nil {
		return nil, err
	}
	params, _ := SplitExtra(pb, ex)
	return planFor(pb, inv, params, limit)
}

// planFor cuts every play's hosts into batches, with the params resolved.
func planFor(pb *playbook.Playbook, inv *inventory.Inventory, params map[string]any, limit string) (*Plan, error) {
	pv, err := pb.ResolveParams(params)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	var lim []string
	if limit != "" {
		if lim, err = inv.Match(limit); err != nil {
			return nil, fmt.Errorf("%w: --limit: %w", failure.ErrValidation, err)
		}
	}
	plan := &Plan{Playbook: pb, Params: eval.ToMap(pv)}
	for _, p := range pb.Plays {
		pattern, err := runner.PlayHosts(pb, p, pv)
		if err != nil {
			return nil, fmt.Errorf("%w: play %q: %w", failure.ErrValidation, p.Name, err)
		}
		hosts, err := inv.Match(pattern)
		if err != nil {
			return nil, fmt.Errorf("%w: play %q: %w", failure.ErrValidation, p.Name, err)
		}
		if lim != nil {
			hosts = slices.DeleteFunc(hosts, func(h string) bool { return !slices.Contains(lim, h) })
		}
		serial, err := runner.PlaySerial(pb, p, pv)
		if err != nil {
			return nil, fmt.Errorf("%w: play %q: %w", failure.ErrValidation, p.Name, err)
		}
		plan.Plays = append(plan.Plays, PlannedPlay{Play: p, Pattern: pattern, Batches: runner.Batches(hosts, serial)})
	}
	return plan, nil
}

// Hosts are every host some play of the plan runs on, in first-use order.
func (p *Plan) Hosts() []string {
	var out []string
	for _, pl := range p.Plays {
		for _, b := range pl.Batches {
			for _, h := range b {
				if !slices.Contains(out, h) {
					out = append(out, h)
				}
			}
		}
	}
	return out
}

// PlaysOn resolves every play's hosts on an inventory whose roles are
// resolved, without connecting (`kubeplay validate -i`). When required
// params are not given, only the plays whose hosts name no param resolve;
// unresolved says which plays did not and why.
func PlaysOn(pb *playbook.Playbook, inv *inventory.Inventory, params map[string]any) (plays []PlannedPlay, unresolved []string, err error) {
	var missing []string
	for _, ps := range pb.Params {
		if _, given := params[ps.Name]; ps.Required && !given && ps.Default == nil {
			missing = append(missing, ps.Name)
		}
	}
	if len(missing) == 0 {
		plan, err := planFor(pb, inv, params, "")
		if err != nil {
			return nil, nil, err
		}
		return plan.Plays, nil, nil
	}
	for _, p := range pb.Plays {
		if p.HostsTmpl != nil {
			unresolved = append(unresolved, fmt.Sprintf("play %q: its hosts (%s) use the params, and the required %s not given (-e)", p.Name, p.Hosts, strings.Join(missing, ", ")))
			continue
		}
		hosts, err := inv.Match(p.Hosts)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: play %q: %w", failure.ErrValidation, p.Name, err)
		}
		plays = append(plays, PlannedPlay{Play: p, Pattern: p.Hosts, Batches: [][]string{hosts}})
	}
	return plays, unresolved, nil
}
