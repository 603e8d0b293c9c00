package runner

import (
	"github.com/kubeplay/kubeplay/playbook"
)

// Batches cuts hosts into consecutive batches as Ansible's serial does: each
// entry of serial sizes one batch (N hosts, or N percent of all hosts,
// rounded down but at least 1); the last entry repeats for the rest. No
// serial means one batch of every host.
func Batches(hosts []string, serial []playbook.Serial) [][]string {
	if len(hosts) == 0 {
		return nil
	}
	if len(serial) == 0 {
		return [][]string{hosts}
	}
	var out [][]string
	rest := hosts
	for i := 0; len(rest) > 0; i++ {
		s := serial[min(i, len(serial)-1)]
		n := s.N
		if s.Percent {
			n = len(hosts) * s.N / 100
		}
		n = max(1, min(n, len(rest)))
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out
}
