package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kubeplay/kubeplay/failure"

	"github.com/kubeplay/kubeplay/transport/etcd"
)

// EtcdHealth reports an etcd cluster's members, leader, raft progress and
// alarms, and fails when the cluster is not safe to change.
type EtcdHealth struct{}

// EtcdHealthParams are etcd-health's parameters.
type EtcdHealthParams struct {
	EtcdClientParams `yaml:",inline"`
	MaxRaftLag       uint64        `yaml:"max_raft_lag" default:"1000" doc:"fail when reachable members' raft indexes differ by more than this"`
	AllowAlarms      bool          `yaml:"allow_alarms" doc:"do not fail on active alarms (NOSPACE, CORRUPT)"`
	RequireAll       bool          `yaml:"require_all" default:"true" doc:"fail when any voting member is unreachable, not only when quorum is lost"`
	MemberTimeout    time.Duration `yaml:"member_timeout" default:"5s" doc:"bound on each member's status call"`
}

// Validate checks the parameters.
func (p *EtcdHealthParams) Validate() error {
	if p.MemberTimeout <= 0 {
		return errors.New("member_timeout must be positive")
	}
	return p.EtcdClientParams.validate()
}

// ErrEtcdUnhealthy is returned when the cluster fails a health rule.
var ErrEtcdUnhealthy = errors.New("etcd unhealthy")

func (EtcdHealth) Name() string { return "etcd-health" }
func (EtcdHealth) Doc() string {
	return "Inspect etcd through the host (a control-plane node): member list, each member's status (leader, raft index and term, db size, learner), alarms and a linearizable read. Register exposes members, leader, alarms, voters, quorum and raft_index_spread. Fails when there is no leader, no quorum, an unreachable voter (require_all), an alarm, or raft indexes apart by more than max_raft_lag. Changes nothing."
}
func (EtcdHealth) NewParams() Params { return &EtcdHealthParams{} }

// Check is Run: the step only reads.
func (m EtcdHealth) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	return m.Run(ctx, t, p)
}

// Run inspects the cluster.
func (EtcdHealth) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	hp := p.(*EtcdHealthParams)
	c, err := hp.inspect(ctx, t, hp.MemberTimeout)
	if err != nil {
		return Result{}, fmt.Errorf("etcd health: %w", err)
	}
	res := Result{Data: asData(c), Msg: summary(c)}
	rules := etcdRules{MaxRaftLag: hp.MaxRaftLag, AllowAlarms: hp.AllowAlarms, RequireAll: hp.RequireAll}
	if err := rules.check(c); err != nil {
		// a cluster settling after a change recovers: retries may wait for it
		return res, failure.Retryable(err)
	}
	return res, nil
}

func summary(c *etcd.Cluster) string {
	leader := c.Leader
	if leader == "" {
		leader = "none"
	}
	return fmt.Sprintf("%d/%d voting members reachable, leader %s, raft index spread %d, %d alarm(s)",
		c.ReachableVoters, c.Voters, leader, c.RaftIndexSpread, len(c.Alarms))
}

// etcdRules are the health rules a cluster must meet: etcd-health's
// params, or changeRules for the steps that change a cluster.
type etcdRules struct {
	MaxRaftLag  uint64
	AllowAlarms bool
	RequireAll  bool
}

// changeRules are the rules around a change of membership or data: every
// voter reachable, raft indexes close (etcd-health's defaults).
func changeRules() etcdRules {
	return etcdRules{RequireAll: true, MaxRaftLag: 1000}
}

// check is nil when the cluster meets the rules, else an ErrEtcdUnhealthy
// naming every rule it breaks.
func (p etcdRules) check(c *etcd.Cluster) error {
	if probs := p.problems(c); len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrEtcdUnhealthy, strings.Join(probs, "; "))
	}
	return nil
}

// problems lists the rules the cluster breaks.
func (p etcdRules) problems(c *etcd.Cluster) []string {
	var out []string
	if c.Leader == "" {
		out = append(out, "no member reports a leader")
	}
	if c.ReachableVoters < c.Quorum {
		out = append(out, fmt.Sprintf("only %d of %d voting members reachable, quorum needs %d", c.ReachableVoters, c.Voters, c.Quorum))
	} else if p.RequireAll && c.ReachableVoters < c.Voters {
		var down []string
		for _, m := range c.Members {
			if !m.Learner && !m.Reachable {
				down = append(down, fmt.Sprintf("%s (%s)", m.Name, m.Error))
			}
		}
		out = append(out, "unreachable: "+strings.Join(down, ", "))
	}
	if !c.QuorumRead {
		out = append(out, "linearizable read failed: "+c.ReadError)
	}
	if len(c.Alarms) > 0 && !p.AllowAlarms {
		out = append(out, "alarms: "+strings.Join(c.Alarms, ", "))
	}
	if c.RaftIndexSpread > p.MaxRaftLag {
		out = append(out, fmt.Sprintf("raft indexes differ by %d (max_raft_lag %d)", c.RaftIndexSpread, p.MaxRaftLag))
	}
	return out
}
