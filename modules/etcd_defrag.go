package modules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kubeplay/kubeplay/transport/etcd"
)

// EtcdDefrag defragments etcd members one at a time, the leader last, with
// the cluster's health checked before each member and after the last.
type EtcdDefrag struct{}

// EtcdDefragParams are etcd-defrag's parameters.
type EtcdDefragParams struct {
	EtcdClientParams `yaml:",inline"`
	Members          []string      `yaml:"members" doc:"member names to defragment (default: every voting member)"`
	Timeout          time.Duration `yaml:"timeout" default:"5m" doc:"bound on each member's defragmentation (the member blocks reads and writes meanwhile)"`
	MemberTimeout    time.Duration `yaml:"member_timeout" default:"5s" doc:"bound on each status call of the health checks"`
	DisarmNoSpace    bool          `yaml:"disarm_nospace" doc:"afterwards, disarm a NOSPACE alarm (as the docs do after freeing space)"`
}

// Validate checks the parameters.
func (p *EtcdDefragParams) Validate() error {
	return p.EtcdClientParams.validateWith(p.Timeout, p.MemberTimeout)
}

func (EtcdDefrag) Name() string { return "etcd-defrag" }
func (EtcdDefrag) Doc() string {
	return "Defragment etcd members one at a time, the leader last, through the host's SSH connection. Before each member (and after the last) every voting member must answer, the cluster must commit a read, and raft indexes must agree; otherwise it stops, naming what is wrong. Reports each member's database size before and after. disarm_nospace clears a NOSPACE alarm afterwards."
}
func (EtcdDefrag) NewParams() Params { return &EtcdDefragParams{} }

// defragOrder is the members to defragment: followers by name, the leader
// last.
func defragOrder(c *etcd.Cluster, only []string) ([]etcd.Member, error) {
	var out []etcd.Member
	var leader *etcd.Member
	for i := range c.Members {
		m := c.Members[i]
		if m.Learner || (len(only) > 0 && !slices.Contains(only, m.Name)) {
			continue
		}
		if len(m.ClientURLs) == 0 {
			return nil, fmt.Errorf("member %s has no client URL", m.Name)
		}
		if m.Leader {
			leader = &m
			continue
		}
		out = append(out, m)
	}
	for _, n := range only {
		if !slices.ContainsFunc(c.Members, func(m etcd.Member) bool { return m.Name == n }) {
			return nil, fmt.Errorf("no etcd member named %s", n)
		}
	}
	if leader != nil {
		out = append(out, *leader)
	}
	return out, nil
}

// healthy checks the rules defragmentation needs between members.
func (p *EtcdDefragParams) healthy(c *etcd.Cluster) error {
	rules := changeRules()
	rules.AllowAlarms = true // defragmentation is how a NOSPACE alarm is cured
	return rules.check(c)
}

// Check lists the order.
func (EtcdDefrag) Check(ctx context.Context, t *Target, p Params) (Result, error) {
	dp := p.(*EtcdDefragParams)
	c, err := dp.inspect(ctx, t, dp.MemberTimeout)
	if err != nil {
		return Result{}, err
	}
	if err := dp.healthy(c); err != nil {
		return Result{}, fmt.Errorf("would refuse: %w", err)
	}
	order, err := defragOrder(c, dp.Members)
	if err != nil {
		return Result{}, err
	}
	names := make([]string, len(order))
	for i, m := range order {
		names[i] = m.Name
	}
	return Result{Changed: len(order) > 0, Msg: "would defragment, one at a time: " + strings.Join(names, ", ") + " (leader last)"}, nil
}

// Run defragments.
func (EtcdDefrag) Run(ctx context.Context, t *Target, p Params) (Result, error) {
	dp := p.(*EtcdDefragParams)
	cli, err := dp.open(ctx, t)
	if err != nil {
		return Result{}, err
	}
	defer cli.Close()
	c, err := etcd.Inspect(ctx, cli, dp.MemberTimeout)
	if err != nil {
		return Result{}, err
	}
	order, err := defragOrder(c, dp.Members)
	if err != nil {
		return Result{}, err
	}
	var done []any
	var msgs []string
	for _, m := range order {
		if c, err = etcd.Inspect(ctx, cli, dp.MemberTimeout); err == nil {
			err = dp.healthy(c)
		}
		if err != nil {
			return Result{Changed: len(done) > 0, Data: map[string]any{"members": done}}, fmt.Errorf("before defragmenting %s: %w", m.Name, err)
		}
		before := sizeOf(c, m.Name)
		dctx, cancel := context.WithTimeout(ctx, dp.Timeout)
		_, err := cli.Defragment(dctx, m.ClientURLs[0])
		cancel()
		if err != nil {
			return Result{Changed: len(done) > 0, Data: map[string]any{"members": done}}, fmt.Errorf("defragment %s: %w", m.Name, err)
		}
		after := before
		if c2, err := etcd.Inspect(ctx, cli, dp.MemberTimeout); err == nil {
			after = sizeOf(c2, m.Name)
		}
		done = append(done, map[string]any{"name": m.Name, "leader": m.Leader, "db_size_before": before, "db_size_after": after})
		msgs = append(msgs, fmt.Sprintf("%s %s → %s", m.Name, mib(before), mib(after)))
	}
	if c, err = etcd.Inspect(ctx, cli, dp.MemberTimeout); err == nil {
		err = dp.healthy(c)
	}
	if err != nil {
		return Result{Changed: true, Data: map[string]any{"members": done}}, fmt.Errorf("after defragmenting: %w", err)
	}
	if dp.DisarmNoSpace {
		if err := disarmNoSpace(ctx, cli); err != nil {
			return Result{Changed: true, Data: map[string]any{"members": done}}, err
		}
	}
	return Result{Changed: len(done) > 0, Msg: "defragmented " + strings.Join(msgs, ", "), Data: map[string]any{"members": done}}, nil
}

func sizeOf(c *etcd.Cluster, name string) int64 {
	for _, m := range c.Members {
		if m.Name == name {
			return m.DBSize
		}
	}
	return 0
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// disarmNoSpace clears NOSPACE alarms.
func disarmNoSpace(ctx context.Context, cli *clientv3.Client) error {
	al, err := cli.AlarmList(ctx)
	if err != nil {
		return fmt.Errorf("etcd alarm list: %w", err)
	}
	for _, a := range al.Alarms {
		if a.Alarm != etcdserverpb.AlarmType_NOSPACE {
			continue
		}
		if _, err := cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(a)); err != nil {
			return fmt.Errorf("disarm NOSPACE: %w", err)
		}
	}
	return nil
}
