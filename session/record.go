package session

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/internal/input"
	"github.com/kubeplay/kubeplay/playbook"
	"github.com/kubeplay/kubeplay/playbooks"
	"github.com/kubeplay/kubeplay/runner"
)

// runRecord is how a run was started (run.json in its directory), so that
// --resume continues it with the same playbook, inventory and params, or
// refuses and says what changed. Secret params and extra vars are never
// recorded: secrets by name only, extra vars by a sha256 of their value.
type runRecord struct {
	Playbook        string            `json:"playbook"`
	PlaybookSHA256  string            `json:"playbook_sha256"`
	Inventory       string            `json:"inventory"`
	InventorySHA256 string            `json:"inventory_sha256"`
	Params          map[string]any    `json:"params"`
	SecretParams    []string          `json:"secret_params,omitempty"`
	ExtraVars       map[string]string `json:"extra_vars_sha256,omitempty"`
	Limit           string            `json:"limit,omitempty"`
	Tags            []string          `json:"tags,omitempty"`
	SkipTags        []string          `json:"skip_tags,omitempty"`
	Roles           map[string]string `json:"roles,omitempty"` // --role
	// InventoryCheck says how the inventory compared with the cluster's
	// Nodes before the run: "ok", "skipped (--skip-inventory-check)", or
	// why it could not be made.
	InventoryCheck string `json:"inventory_check,omitempty"`
	ResumedFrom    string `json:"resumed_from,omitempty"`
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// playbookBytes is the source a playbook ref names.
func playbookBytes(ref string) ([]byte, error) {
	if _, err := os.Stat(ref); err == nil {
		return input.ReadFile(ref, input.MaxPlaybook)
	}
	return playbooks.Source(ref)
}

func newRecord(o Options, pb *playbook.Playbook, roles map[string]string, params, vars map[string]any) (*runRecord, error) {
	ref, invPath := o.Playbook, o.Inventory
	src, err := playbookBytes(ref)
	if err != nil {
		return nil, err
	}
	r := &runRecord{Playbook: ref, PlaybookSHA256: sum(src), Inventory: invPath, Params: map[string]any{},
		ExtraVars: map[string]string{}, Limit: o.Limit, Tags: o.Tags, SkipTags: o.SkipTags, Roles: roles}
	if _, err := os.Stat(ref); err == nil {
		// a playbook file by its absolute path: --resume works from any
		// directory
		if abs, err := filepath.Abs(ref); err == nil {
			r.Playbook = abs
		}
	}
	if invPath != "" {
		if abs, err := filepath.Abs(invPath); err == nil {
			r.Inventory = abs
		}
		b, err := os.ReadFile(invPath)
		if err != nil {
			return nil, err
		}
		r.InventorySHA256 = sum(b)
	}
	secret := map[string]bool{}
	for _, p := range pb.Params {
		secret[p.Name] = p.Secret
	}
	for k, v := range params {
		if secret[k] {
			r.SecretParams = append(r.SecretParams, k)
			continue
		}
		r.Params[k] = v
	}
	sort.Strings(r.SecretParams)
	for k, v := range vars {
		r.ExtraVars[k] = sum([]byte(fmt.Sprint(v)))
	}
	return r, nil
}

func writeRecord(dir string, r *runRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "run.json"), b, 0o600)
}

// earlierRun reads the run to resume: its record and its journal.
func earlierRun(stateDir, id string) (*runRecord, *runner.Resume, error) {
	if filepath.Base(id) != id || id == "" {
		return nil, nil, fmt.Errorf("%w: %q is not a run id", failure.ErrValidation, id)
	}
	dir := filepath.Join(RunsDir(stateDir), id)
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: run %s cannot be resumed: %w", failure.ErrValidation, id, err)
	}
	var r runRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("%w: run %s: run.json: %w", failure.ErrValidation, id, err)
	}
	evs, err := ReadJournal(dir)
	if err != nil {
		// a damaged journal cannot say which steps finished: resuming from
		// it would run them again, or skip ones that never ran
		return nil, nil, fmt.Errorf("%w: run %s cannot be resumed: %w", failure.ErrValidation, id, err)
	}
	if s := Summarize(id, evs); s.State == "ok" {
		return nil, nil, fmt.Errorf("%w: run %s finished ok: nothing to resume", failure.ErrValidation, id)
	} else if s.Check {
		return nil, nil, fmt.Errorf("%w: run %s was a dry run (--check): nothing to resume", failure.ErrValidation, id)
	}
	return &r, runner.ResumeFrom(id, evs), nil
}

// reconcile fills the resumed run's params from the earlier run and lists
// every difference that forbids resuming: another playbook or inventory
// content, a param given with another value, a secret param or extra var
// not given again (or given with another value), other limits or tags.
func reconcile(prev, cur *runRecord, params, vars map[string]any) []string {
	var diffs []string
	if prev.PlaybookSHA256 != cur.PlaybookSHA256 {
		diffs = append(diffs, fmt.Sprintf("the playbook %s changed since the run (sha256 %.12s → %.12s)", cur.Playbook, prev.PlaybookSHA256, cur.PlaybookSHA256))
	}
	if prev.InventorySHA256 != cur.InventorySHA256 {
		diffs = append(diffs, fmt.Sprintf("the inventory %s changed since the run", cur.Inventory))
	}
	for k, v := range prev.Params {
		given, ok := params[k]
		if !ok {
			params[k] = v
			cur.Params[k] = v
			continue
		}
		if fmt.Sprint(given) != fmt.Sprint(v) {
			diffs = append(diffs, fmt.Sprintf("param %s: %v, the run had %v", k, given, v))
		}
	}
	for k := range cur.Params {
		if _, ok := prev.Params[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("param %s was not given to the run", k))
		}
	}
	for _, k := range prev.SecretParams {
		if !slices.Contains(cur.SecretParams, k) {
			diffs = append(diffs, fmt.Sprintf("secret param %s is not recorded: give it again with -e", k))
		}
	}
	for k, h := range prev.ExtraVars {
		switch got, ok := cur.ExtraVars[k]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("extra var %s is not recorded: give it again with -e", k))
		case got != h:
			diffs = append(diffs, fmt.Sprintf("extra var %s has another value than in the run", k))
		}
	}
	for k := range cur.ExtraVars {
		if _, ok := prev.ExtraVars[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra var %s was not given to the run", k))
		}
	}
	if prev.Limit != cur.Limit || !slices.Equal(prev.Tags, cur.Tags) || !slices.Equal(prev.SkipTags, cur.SkipTags) {
		diffs = append(diffs, fmt.Sprintf("--limit/--tags/--skip-tags differ from the run's (%q %v %v)", prev.Limit, prev.Tags, prev.SkipTags))
	}
	if !maps.Equal(prev.Roles, cur.Roles) {
		diffs = append(diffs, fmt.Sprintf("--role differs from the run's (%v)", prev.Roles))
	}
	sort.Strings(diffs)
	return diffs
}

func refuseResume(id string, diffs []string) error {
	return fmt.Errorf("%w: cannot resume run %s:\n  - %s", failure.ErrValidation, id, strings.Join(diffs, "\n  - "))
}
