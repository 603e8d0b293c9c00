package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type fakeResolver map[string][]string

func (f fakeResolver) LookupHost(_ context.Context, h string) ([]string, error) {
	if ips, ok := f[h]; ok {
		return ips, nil
	}
	return nil, errors.New("no such host")
}

// Check names every kind of disagreement, resolves an address that is a
// name before comparing it, and with hosts given checks only those.
func TestCheckAgainstNodes(t *testing.T) {
	inv := parse(t, "inv.yaml", `hosts:
  cp1: {address: cp1.example}
  w1: {address: 10.0.0.2}
  w2: {address: 10.0.0.9}
  w3: {address: w3.example}
  gone: {address: 10.0.0.7}
groups:
  control_plane: {hosts: [cp1, w1]}
  workers: {hosts: [w2, w3, gone]}
`)
	nodes := []Node{
		{Name: "cp1", Addresses: []string{"10.0.0.1"}, ControlPlane: true},
		{Name: "w1", Addresses: []string{"10.0.0.2"}},
		{Name: "w2", Addresses: []string{"10.0.0.3"}},
		{Name: "w3", Addresses: []string{"10.0.0.4"}},
		{Name: "extra", Addresses: []string{"10.0.0.5"}},
	}
	res := fakeResolver{"cp1.example": {"10.0.0.1"}}
	mm, err := inv.Check(context.Background(), nodes, nil, res)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mm {
		got = append(got, m.String())
	}
	want := []string{
		"host w1 (Node w1): in role control_plane, but the Node has no node-role.kubernetes.io/control-plane label",
		"host w2 (Node w2): address 10.0.0.9 is not one of the Node's (10.0.0.3)",
		"host w3 (Node w3): address w3.example: resolve: no such host",
		"host gone: no Node is named gone (node_name) or has address 10.0.0.7",
		"Node extra: no inventory host covers it (by node_name or address)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("mismatches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// only the targeted hosts, and no Node is reported as uncovered
	mm, err = inv.Check(context.Background(), nodes, []string{"cp1", "w2"}, res)
	if err != nil || len(mm) != 1 || mm[0].Host != "w2" {
		t.Fatalf("targeted: %+v %v", mm, err)
	}
}
