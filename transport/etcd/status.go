package etcd

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one etcd member as seen from the cluster and from itself.
type Member struct {
	ID         string   `json:"id"` // hex, as etcdctl prints it
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls"`
	Learner    bool     `json:"learner"`
	// from the member's own Status; zero when unreachable
	Reachable   bool   `json:"reachable"`
	Error       string `json:"error,omitempty"`
	Leader      bool   `json:"leader"`
	Version     string `json:"version"`
	RaftIndex   uint64 `json:"raft_index"`
	RaftApplied uint64 `json:"raft_applied_index"`
	RaftTerm    uint64 `json:"raft_term"`
	DBSize      int64  `json:"db_size"`
	DBSizeInUse int64  `json:"db_size_in_use"`
}

// Cluster is a point-in-time view of an etcd cluster.
type Cluster struct {
	ClusterID string   `json:"cluster_id"`
	Members   []Member `json:"members"`
	Leader    string   `json:"leader"` // member name ("" when none)
	Alarms    []string `json:"alarms"` // "NOSPACE on cp2"
	// Voters counts non-learner members; Quorum is the majority of them;
	// ReachableVoters those that answered Status.
	Voters          int `json:"voters"`
	Quorum          int `json:"quorum"`
	ReachableVoters int `json:"reachable_voters"`
	// QuorumRead is whether a linearizable read succeeded, the proof that
	// the cluster can commit.
	QuorumRead bool   `json:"quorum_read"`
	ReadError  string `json:"read_error,omitempty"`
	// RaftIndexSpread is max-min raft index over reachable members.
	RaftIndexSpread uint64 `json:"raft_index_spread"`
}

// Inspect gathers the member list, each member's status (each bounded by
// perMember), the alarms and a linearizable read.
func Inspect(ctx context.Context, cli *clientv3.Client, perMember time.Duration) (*Cluster, error) {
	lctx, cancel := context.WithTimeout(ctx, perMember)
	ml, err := cli.MemberList(lctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	c := &Cluster{ClusterID: strconv.FormatUint(ml.Header.GetClusterId(), 16)}
	for _, m := range ml.Members {
		mem := Member{
			ID:         strconv.FormatUint(m.ID, 16),
			Name:       m.Name,
			PeerURLs:   m.PeerURLs,
			ClientURLs: m.ClientURLs,
			Learner:    m.IsLearner,
		}
		if !m.IsLearner {
			c.Voters++
		}
		statusOf(ctx, cli, &mem, m, perMember)
		if mem.Reachable && !m.IsLearner {
			c.ReachableVoters++
		}
		if mem.Leader {
			c.Leader = mem.Name
		}
		c.Members = append(c.Members, mem)
	}
	sort.Slice(c.Members, func(i, j int) bool { return c.Members[i].Name < c.Members[j].Name })
	c.Quorum = c.Voters/2 + 1
	var lo, hi uint64
	first := true
	for _, m := range c.Members {
		if !m.Reachable {
			continue
		}
		if first || m.RaftIndex < lo {
			lo = m.RaftIndex
		}
		if first || m.RaftIndex > hi {
			hi = m.RaftIndex
		}
		first = false
	}
	c.RaftIndexSpread = hi - lo

	actx, cancel := context.WithTimeout(ctx, perMember)
	al, err := cli.AlarmList(actx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("etcd alarm list: %w", err)
	}
	names := map[uint64]string{}
	for _, m := range ml.Members {
		names[m.ID] = m.Name
	}
	for _, a := range al.Alarms {
		if a.Alarm == etcdserverpb.AlarmType_NONE {
			continue
		}
		c.Alarms = append(c.Alarms, fmt.Sprintf("%s on %s", a.Alarm, names[a.MemberID]))
	}

	rctx, cancel := context.WithTimeout(ctx, perMember)
	_, err = cli.Get(rctx, "health")
	cancel()
	c.QuorumRead = err == nil
	if err != nil {
		c.ReadError = err.Error()
	}
	return c, nil
}

func statusOf(ctx context.Context, cli *clientv3.Client, mem *Member, m *etcdserverpb.Member, bound time.Duration) {
	if len(m.ClientURLs) == 0 {
		mem.Error = "no client URL (not started yet)"
		return
	}
	sctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	st, err := cli.Status(sctx, m.ClientURLs[0])
	if err != nil {
		mem.Error = err.Error()
		return
	}
	mem.Reachable = len(st.Errors) == 0
	if len(st.Errors) > 0 {
		mem.Error = fmt.Sprint(st.Errors)
	}
	mem.Leader = st.Leader == m.ID
	mem.Version = st.Version
	mem.RaftIndex = st.RaftIndex
	mem.RaftApplied = st.RaftAppliedIndex
	mem.RaftTerm = st.RaftTerm
	mem.DBSize = st.DbSize
	mem.DBSizeInUse = st.DbSizeInUse
}
