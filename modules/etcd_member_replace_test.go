package modules

import (
	"errors"
	"github.com/kubeplay/kubeplay/internal/ytree"
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/transport/etcd"
)

func member(name, id, ip string, up, learner bool) etcd.Member {
	return etcd.Member{ID: id, Name: name, PeerURLs: []string{"https://" + ip + ":2380"}, ClientURLs: []string{"https://" + ip + ":2379"},
		Reachable: up, Learner: learner}
}

func cluster(ms ...etcd.Member) *etcd.Cluster {
	c := &etcd.Cluster{ClusterID: "c1", Members: ms, QuorumRead: true}
	for _, m := range ms {
		if !m.Learner {
			c.Voters++
			if m.Reachable {
				c.ReachableVoters++
			}
		}
	}
	c.Quorum = c.Voters/2 + 1
	if c.ReachableVoters >= c.Quorum {
		c.Leader = ms[0].Name
	}
	return c
}

const newPeer = "https://10.0.0.4:2380"

func TestDecideReplacement(t *testing.T) {
	cp1, cp2, cp3 := member("cp1", "a1", "10.0.0.1", true, false), member("cp2", "a2", "10.0.0.2", true, false), member("cp3", "a3", "10.0.0.3", true, false)
	down := func(m etcd.Member) etcd.Member { m.Reachable = false; return m }
	cp4 := member("cp4", "a4", "10.0.0.4", true, false)
	learner := member("", "a4", "10.0.0.4", false, true)
	rec := &replaceRecord{ClusterID: "c1", OldName: "cp3", OldID: "a3", OldPeer: "https://10.0.0.3:2380", NewPeer: newPeer}
	sel := func(s string) memberSelector { return memberSelector{text: s} }
	cases := []struct {
		name  string
		c     *etcd.Cluster
		sel   memberSelector
		rec   *replaceRecord
		phase replacePhase
		old   string
		err   string // substring; "" for no error
		guard bool   // the error is a quorum-guard refusal
	}{
		{name: "healthy, by name", c: cluster(cp1, cp2, cp3), sel: sel("cp3"), phase: phaseReplace, old: "cp3"},
		{name: "by ID", c: cluster(cp1, cp2, cp3), sel: sel("A2"), phase: phaseReplace, old: "cp2"},
		{name: "by peer URL", c: cluster(cp1, cp2, cp3), sel: sel("https://10.0.0.1:2380"), phase: phaseReplace, old: "cp1"},
		{name: "by host address", c: cluster(cp1, cp2, cp3), sel: memberSelector{text: "node-c", addr: "10.0.0.3"}, phase: phaseReplace, old: "cp3"},
		{name: "the stopped member", c: cluster(cp1, cp2, down(cp3)), sel: sel("cp3"), phase: phaseReplace, old: "cp3"},
		{name: "a healthy member while another is down", c: cluster(cp1, cp2, down(cp3)), sel: sel("cp2"), guard: true,
			err: "removing cp2 would leave 1 started, healthy voting member(s) (cp1) where the remaining 2 need a quorum of 2; replace the unhealthy member(s) cp3 first"},
		{name: "5 members, 2 down elsewhere", c: cluster(cp1, cp2, cp3, down(member("cp5", "a5", "10.0.0.5", false, false)), down(member("cp6", "a6", "10.0.0.6", false, false))),
			sel: sel("cp1"), guard: true, err: "rule: removal keeps quorum"},
		{name: "5 members, 1 down elsewhere", c: cluster(cp1, cp2, cp3, member("cp5", "a5", "10.0.0.5", true, false), down(member("cp6", "a6", "10.0.0.6", false, false))),
			sel: sel("cp1"), phase: phaseReplace, old: "cp1"},
		{name: "2 members", c: cluster(cp1, cp2), sel: sel("cp2"), guard: true, err: "rule: no 2-member cluster"},
		{name: "another learner pending", c: cluster(cp1, cp2, cp3, member("", "b9", "10.0.0.9", false, true)), sel: sel("cp3"), guard: true, err: "rule: one learner at a time"},
		{name: "no quorum", c: cluster(cp1, down(cp2), down(cp3)), sel: sel("cp3"), guard: true, err: "rule: quorum now"},
		{name: "unknown member", c: cluster(cp1, cp2, cp3), sel: sel("cp9"), err: `no etcd member matches "cp9" (members: cp1, cp2, cp3)`},
		{name: "learner added: finish", c: cluster(cp1, cp2, learner), sel: sel("cp3"), phase: phaseJoin},
		{name: "already replaced", c: cluster(cp1, cp2, cp4), sel: sel("cp3"), phase: phaseDone},
		{name: "both present", c: cluster(cp1, cp2, cp3, cp4), sel: sel("cp3"), guard: true, err: "rule: one change at a time"},
		{name: "removed by an earlier run", c: cluster(cp1, cp2), sel: sel("cp3"), rec: rec, phase: phaseAdd},
		{name: "record of another cluster", c: func() *etcd.Cluster { c := cluster(cp1, cp2); c.ClusterID = "c2"; return c }(), sel: sel("cp3"), rec: rec, err: "no etcd member matches"},
		{name: "record of another member", c: cluster(cp1, cp2), sel: sel("cp2x"), rec: rec, err: "no etcd member matches"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := decide(tc.c, tc.sel, newPeer, tc.rec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error containing %q, got %v", tc.err, err)
				}
				if errors.Is(err, ErrQuorumGuard) != tc.guard {
					t.Fatalf("quorum guard: want %v, got %v", tc.guard, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pl.phase != tc.phase || pl.old.Name != tc.old {
				t.Fatalf("want phase %s old %q, got %s %q", tc.phase, tc.old, pl.phase, pl.old.Name)
			}
		})
	}
}

const kubeadmEtcdManifest = `apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.1:2379
  labels:
    component: etcd
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.0.0.1:2379
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.0.0.1:2380
    - --initial-cluster=cp1=https://10.0.0.1:2380
    - --listen-client-urls=https://127.0.0.1:2379,https://10.0.0.1:2379
    - --listen-metrics-urls=http://127.0.0.1:2381
    - --listen-peer-urls=https://10.0.0.1:2380
    - --name=cp1
    - --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
    image: registry.k8s.io/etcd:3.6.5-0
    name: etcd
`

func TestMemberManifest(t *testing.T) {
	ms := []*etcdMember{{ID: 1, Name: "cp1", PeerURLs: []string{"https://10.0.0.1:2380"}}, {ID: 2, Name: "cp2", PeerURLs: []string{"https://10.0.0.2:2380"}},
		{ID: 4, PeerURLs: []string{"https://10.0.0.4:2380"}}}
	ic := initialCluster(ms, 4, "cp4")
	if ic != "cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380,cp4=https://10.0.0.4:2380" {
		t.Fatalf("initial cluster: %s", ic)
	}
	out, err := memberManifest(kubeadmEtcdManifest, "cp4", "10.0.0.4", ic)
	if err != nil {
		t.Fatal(err)
	}
	flags, err := podFlags(out, "etcd")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"name":                        "cp4",
		"advertise-client-urls":       "https://10.0.0.4:2379",
		"initial-advertise-peer-urls": "https://10.0.0.4:2380",
		"listen-client-urls":          "https://127.0.0.1:2379,https://10.0.0.4:2379",
		"listen-peer-urls":            "https://10.0.0.4:2380",
		"listen-metrics-urls":         "http://127.0.0.1:2381",
		"initial-cluster":             ic,
		"initial-cluster-state":       "existing",
		"data-dir":                    "/var/lib/etcd",
	}
	for k, v := range want {
		if flags[k] != v {
			t.Errorf("--%s = %q, want %q", k, flags[k], v)
		}
	}
	if !strings.Contains(out, "kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.4:2379") || strings.Contains(strings.ReplaceAll(out, ic, ""), "10.0.0.1") {
		t.Fatalf("the source member's address is left:\n%s", out)
	}
	if _, err := memberManifest("apiVersion: v1\nkind: Pod\nspec: {containers: [{name: other}]}\n", "cp4", "10.0.0.4", ic); err == nil {
		t.Fatal("a manifest without an etcd container must be refused")
	}
}

func TestEtcdMemberReplaceParams(t *testing.T) {
	for _, tc := range []struct {
		p   EtcdMemberReplaceParams
		err string
	}{
		{EtcdMemberReplaceParams{Member: "cp3", NewHost: "cp4"}, "snapshot is required"},
		{EtcdMemberReplaceParams{Member: "cp3", NewHost: "cp4", Snapshot: "skip", Certs: "self"}, "certs"},
		{EtcdMemberReplaceParams{Member: "cp3", NewHost: "cp4", Snapshot: "skip", NewAddress: "cp4.example"}, "not an IP"},
		{EtcdMemberReplaceParams{NewHost: "cp4", Snapshot: "skip"}, "required"},
		{EtcdMemberReplaceParams{Member: "cp3", NewHost: "cp4", Snapshot: "/tmp/s.db"}, ""},
	} {
		ytree.FillDefaults(&tc.p)
		err := tc.p.Validate()
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: want %q, got %v", tc.p, tc.err, err)
		}
	}
}
