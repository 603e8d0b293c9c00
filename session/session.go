// Package session composes a run from parsed command-line options: the
// playbook, the inventory, the resume record and its reconciliation, the
// cluster access, the cluster lock, the run directory with its journal and
// redacting log, and the runner. The CLI parses flags and prints; data
// flows down from here, never back into cmd.
package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/kubeplay/kubeplay/events"
	"github.com/kubeplay/kubeplay/failure"
	"github.com/kubeplay/kubeplay/lock"
	"github.com/kubeplay/kubeplay/modules"
	"github.com/kubeplay/kubeplay/output"
	"github.com/kubeplay/kubeplay/runner"
	"github.com/kubeplay/kubeplay/secret"
	"github.com/kubeplay/kubeplay/transport/local"
	"github.com/kubeplay/kubeplay/transport/ssh"
)

// Options are a run's parsed options.
type Options struct {
	Playbook  string   // a file or a bundled name ("" with Resume: the earlier run's)
	Inventory string   // "" with Resume: the earlier run's
	Extra     []string // -e: key=value or @file.yaml
	Limit     string
	Roles     []string // --role ROLE=PATTERN
	Tags      []string
	SkipTags  []string
	StartAt   string
	Check     bool
	Diff      bool
	Forks     int
	// Resume is the id of a run to continue.
	Resume          string
	StateDir        string
	RollbackTimeout time.Duration
	// SkipInventoryCheck runs without comparing the targeted hosts with
	// the cluster's Nodes first (the run records that it was skipped).
	SkipInventoryCheck bool
	Lock               LockOptions
	Kube               KubeOptions
	SSH                ssh.Options
	// View is where events are shown (the terminal, or JSON on stdout).
	View   events.Sink
	Prompt modules.Prompter
}

// Result is what a run leaves: its id and directory, and its recap (nil
// when no play started).
type Result struct {
	RunID string
	Dir   string
	Recap *runner.Recap
	Took  time.Duration
}

// DefaultStateDir is where run directories are kept by default:
// $XDG_STATE_HOME/kubeplay, else ~/.local/state/kubeplay.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kubeplay")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".kubeplay"
	}
	return filepath.Join(home, ".local", "state", "kubeplay")
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run runs a playbook as o says. Whatever it refuses before the run
// starts is a failure.ErrValidation and leaves no run directory behind.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.RollbackTimeout <= 0 || o.Lock.TTL <= 0 {
		return nil, fmt.Errorf("%w: --rollback-timeout and --lock-ttl must be positive, got %s and %s", failure.ErrValidation, o.RollbackTimeout, o.Lock.TTL)
	}
	if err := secret.Check(o.SSH.BecomePassword.Reveal()); err != nil {
		return nil, fmt.Errorf("%w: become password: %w", failure.ErrValidation, err)
	}
	var prev *runRecord
	var resume *runner.Resume
	if o.Resume != "" {
		var err error
		if prev, resume, err = earlierRun(o.StateDir, o.Resume); err != nil {
			return nil, err
		}
		o.Playbook = cmp.Or(o.Playbook, prev.Playbook)
		o.Inventory = cmp.Or(o.Inventory, prev.Inventory)
		o.Limit = cmp.Or(o.Limit, prev.Limit)
		if o.Roles == nil {
			for r, p := range prev.Roles {
				o.Roles = append(o.Roles, r+"="+p)
			}
		}
		if o.Tags == nil {
			o.Tags = prev.Tags
		}
		if o.SkipTags == nil {
			o.SkipTags = prev.SkipTags
		}
	}
	pb, err := LoadPlaybook(o.Playbook)
	if err != nil {
		return nil, err
	}
	inv, err := LoadInventory(o.Inventory)
	if err != nil {
		return nil, err
	}
	extra, err := ParseExtra(o.Extra)
	if err != nil {
		return nil, err
	}
	params, vars := SplitExtra(pb, extra)
	roles, err := ParseRoles(o.Roles)
	if err != nil {
		return nil, err
	}
	record, err := newRecord(o, pb, roles, params, vars)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if diffs := reconcile(prev, record, params, vars); len(diffs) > 0 {
			return nil, refuseResume(o.Resume, diffs)
		}
		record.ResumedFrom = o.Resume
	}
	// refuse bad params before a run (and its directory) exists
	if _, err := pb.ResolveParams(params); err != nil {
		return nil, fmt.Errorf("%w: %w", failure.ErrValidation, err)
	}
	if o.StartAt != "" && !runner.HasStep(pb, o.StartAt) {
		return nil, fmt.Errorf("%w: --start-at-step: no step is named %q", failure.ErrValidation, o.StartAt)
	}

	connector := ssh.NewConnector(o.SSH)
	cluster, closeCluster, err := Connect(ctx, o.Kube, inv, connector)
	if err != nil {
		return nil, err
	}
	defer closeCluster()
	if record.InventoryCheck, err = checkTargets(ctx, o, pb, inv, cluster, roles, params); err != nil {
		return nil, err
	}
	res := &Result{RunID: newRunID()}
	res.Dir = filepath.Join(RunsDir(o.StateDir), res.RunID)
	if err := os.MkdirAll(res.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	if err := writeRecord(res.Dir, record); err != nil {
		return nil, fmt.Errorf("record the run: %w", err)
	}
	redactor := secret.NewRedactor()
	redactor.Add(o.SSH.BecomePassword.Reveal())
	logFile, err := os.OpenFile(filepath.Join(res.Dir, "log.json"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close()
	log := newLogger(logFile, redactor).With(zap.String("run", res.RunID))
	defer func() { _ = log.Sync() }()
	evFile, err := os.OpenFile(filepath.Join(res.Dir, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open events: %w", err)
	}
	defer evFile.Close()
	sink := events.Multi{o.View, output.NewJSON(evFile), logSink{log}}

	// one changing run per cluster; dry runs and runs without a cluster
	// take no lock
	if cluster.Kube != nil && !o.Check && !o.Lock.Skip {
		lk, err := takeLock(ctx, cluster.Kube, res.RunID, o.Resume, o.Lock, sink)
		if err != nil {
			// nothing ran: leave no run behind for `kubeplay runs` to list
			_ = os.RemoveAll(res.Dir)
			return nil, err
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-lk.Lost():
				log.Error("cluster lock lost: stopping the run", zap.String("lock", lock.Namespace+"/"+lock.Name))
				sink.Emit(events.Event{Type: events.Lock, Run: res.RunID, Time: time.Now(), Msg: "LOCK lost to another run: stopping"})
				cancel()
			case <-ctx.Done():
			}
		}()
		defer func() {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer rcancel()
			if err := lk.Release(rctx); err != nil {
				log.Warn("release cluster lock", zap.Error(err))
			}
		}()
	}

	start := time.Now()
	res.Recap, err = runner.Run(ctx, pb, inv, runner.Options{
		RunID: res.RunID, Forks: o.Forks, Check: o.Check, Diff: o.Diff, Limit: o.Limit,
		Tags: o.Tags, SkipTags: o.SkipTags, StartAtStep: o.StartAt,
		Params: params, ExtraVars: vars, Sink: sink, Log: log,
		Local: local.Conn{}, Prompt: o.Prompt, RollbackTimeout: o.RollbackTimeout, Redactor: redactor,
		Cluster: cluster, Resume: resume, Connector: connector, InventoryCheck: record.InventoryCheck,
	})
	res.Took = time.Since(start)
	return res, err
}
