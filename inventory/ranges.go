package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxRange is the most hosts one host name with ranges (node[1:100],
// rack-[a:d]-[01:40]) expands to.
const MaxRange = 10000

// letters orders the letters of an alphabetic range as Ansible does: a..z
// then A..Z, so [x:B] is x y z A B.
const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandRange expands the host ranges of an inventory host name, as
// Ansible's INI and YAML inventories do: [01:03] (zero-padded to the width
// of its bounds), [1:9:2] (with a stride), [a:c] (letters), and several
// ranges in one name (rack[a:b]-n[1:2]). A name without a range is itself.
func expandRange(h string) ([]string, error) {
	var out []string
	if err := expandInto(h, h, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func expandInto(full, h string, out *[]string) error {
	head, spec, tail, ok := firstRange(h)
	if !ok {
		*out = append(*out, h)
		return nil
	}
	items, err := rangeItems(full, spec)
	if err != nil {
		return err
	}
	for _, it := range items {
		if len(*out) >= MaxRange {
			return fmt.Errorf("host range %q: more than %d hosts", full, MaxRange)
		}
		if err := expandInto(full, head+it+tail, out); err != nil {
			return err
		}
	}
	return nil
}

// firstRange splits h around its first [begin:end] or [begin:end:step].
// Brackets without a colon are not a range, and stay in the name.
func firstRange(h string) (head, spec, tail string, ok bool) {
	i := strings.IndexByte(h, '[')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.IndexByte(h[i:], ']')
	if j < 0 || !strings.Contains(h[i:i+j], ":") {
		return "", "", "", false
	}
	return h[:i], h[i+1 : i+j], h[i+j+1:], true
}

func rangeItems(full, spec string) ([]string, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("host range %q: %s", full, fmt.Sprintf(format, a...))
	}
	b := strings.Split(spec, ":")
	if len(b) > 3 {
		return nil, bad("want [begin:end] or [begin:end:step]")
	}
	beg, end, step := b[0], b[1], 1
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, bad("no end")
	}
	if len(b) == 3 {
		s, err := strconv.Atoi(b[2])
		if err != nil || s <= 0 {
			return nil, bad("step %q is not a positive number", b[2])
		}
		step = s
	}
	if ib, ie := strings.Index(letters, beg), strings.Index(letters, end); len(beg) == 1 && len(end) == 1 && ib >= 0 && ie >= 0 {
		if ib > ie {
			return nil, bad("end before start")
		}
		var out []string
		for i := ib; i <= ie; i += step {
			out = append(out, letters[i:i+1])
		}
		return out, nil
	}
	a, errA := strconv.Atoi(beg)
	z, errZ := strconv.Atoi(end)
	switch {
	case errA != nil || errZ != nil || a < 0 || z < 0:
		return nil, bad("bounds are neither numbers nor single letters")
	case z < a:
		return nil, bad("end before start")
	case (z-a)/step >= MaxRange:
		return nil, bad("%d hosts, at most %d", (z-a)/step+1, MaxRange)
	}
	width := 0
	if len(beg) > 1 && beg[0] == '0' {
		if len(beg) != len(end) {
			return nil, bad("a zero-padded range needs bounds of one width (%s, %s)", beg, end)
		}
		width = len(beg)
	}
	var out []string
	for i := a; i <= z; i += step {
		out = append(out, fmt.Sprintf("%0*d", width, i))
	}
	return out, nil
}
