package modules

import (
	"strings"
	"testing"

	"github.com/kubeplay/kubeplay/transport/etcd"
)

func TestDefragOrderLeaderLast(t *testing.T) {
	c := &etcd.Cluster{Members: []etcd.Member{
		{Name: "cp1", Leader: true, ClientURLs: []string{"https://10.0.0.1:2379"}},
		{Name: "cp2", ClientURLs: []string{"https://10.0.0.2:2379"}},
		{Name: "cp3", ClientURLs: []string{"https://10.0.0.3:2379"}},
		{Name: "new", Learner: true, ClientURLs: []string{"https://10.0.0.4:2379"}},
	}}
	names := func(ms []etcd.Member) string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return strings.Join(out, ",")
	}
	order, err := defragOrder(c, nil)
	if err != nil || names(order) != "cp2,cp3,cp1" {
		t.Fatalf("order %s %v, want followers then the leader, no learner", names(order), err)
	}
	order, err = defragOrder(c, []string{"cp1", "cp3"})
	if err != nil || names(order) != "cp3,cp1" {
		t.Fatalf("subset %s %v", names(order), err)
	}
	if _, err := defragOrder(c, []string{"cp9"}); err == nil {
		t.Fatal("an unknown member was accepted")
	}
}
