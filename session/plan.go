package session

import (
	"fmt"
	"slices"

	"github.com/kubeplay/kubeplay/eval"
	"github.com/kubeplay/kubeplay/failure"
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

// MakePlan loads the playbook ref and the inventory, resolves the params
// from extra (-e) and cuts every play's hosts into its batches.
func MakePlan(ref, inventoryPath string, extra []string, limit string) (*Plan, error) {
	pb, err := LoadPlaybook(ref)
	if err != nil {
		return nil, err
	}
	inv, err := LoadInventory(inventoryPath)
	if err != nil {
		return nil, err
	}
	ex, err := ParseExtra(extra)
	if err != nil {
		return nil, err
	}
	params, _ := SplitExtra(pb, ex)
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
