package inventory

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// ErrNoHosts is returned when a pattern matches nothing.
var ErrNoHosts = errors.New("pattern matches no hosts")

// Match resolves an Ansible-style host pattern to hosts in inventory order
// (for a single group term: the group's order).
//
// Terms are separated by "," (or ":" when unambiguous): names, globs
// ("web*"), "~regex", groups, roles ("role:control_plane", see
// ResolveRoles), "group[0]", "group[1:]", "group[-1]", "all" or "*". A term prefixed with "&" intersects, one prefixed with "!"
// excludes. As in Ansible, unions are taken first, then intersections, then
// exclusions.
func (inv *Inventory) Match(pattern string) ([]string, error) {
	terms := splitPattern(pattern)
	if len(terms) == 0 {
		return nil, fmt.Errorf("empty host pattern")
	}
	var union []string
	var inter, excl [][]string
	seen := map[string]bool{}
	for _, t := range terms {
		switch {
		case strings.HasPrefix(t, "&"):
			hs, err := inv.term(t[1:])
			if err != nil {
				return nil, err
			}
			inter = append(inter, hs)
		case strings.HasPrefix(t, "!"):
			hs, err := inv.term(t[1:])
			if err != nil {
				return nil, err
			}
			excl = append(excl, hs)
		default:
			hs, err := inv.term(t)
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				if !seen[h] {
					seen[h] = true
					union = append(union, h)
				}
			}
		}
	}
	if len(union) == 0 && (len(inter) > 0 || len(excl) > 0) {
		union = inv.HostNames() // "!x" alone means all but x
	}
	out := union[:0:0]
	for _, h := range union {
		if inAll(h, inter) && !inAny(h, excl) {
			out = append(out, h)
		}
	}
	return out, nil
}

func inAll(h string, sets [][]string) bool {
	for _, s := range sets {
		if !contains(s, h) {
			return false
		}
	}
	return true
}

func inAny(h string, sets [][]string) bool {
	for _, s := range sets {
		if contains(s, h) {
			return true
		}
	}
	return false
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// splitPattern splits on commas, and on colons outside brackets (Ansible's
// legacy separator), ignoring empty terms.
func splitPattern(p string) []string {
	sep := ","
	if !strings.Contains(p, ",") && !strings.Contains(p, "[") && !strings.HasPrefix(strings.TrimSpace(p), "~") {
		sep = ":"
	}
	var out []string
	parts := strings.Split(p, sep)
	for i := 0; i < len(parts); i++ {
		t := strings.TrimSpace(parts[i])
		// "role:NAME" is one term, also where ":" separates terms
		if sep == ":" && strings.TrimLeft(t, "&!") == strings.TrimSuffix(rolePrefix, ":") && i+1 < len(parts) {
			i++
			t += ":" + strings.TrimSpace(parts[i])
		}
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

var sliceRe = regexp.MustCompile(`^(.+)\[(-?\d*)(:?)(-?\d*)\]$`)

// term resolves one pattern term.
func (inv *Inventory) term(t string) ([]string, error) {
	if t == "all" || t == "*" {
		return inv.HostNames(), nil
	}
	if strings.HasPrefix(t, "~") {
		re, err := regexp.Compile(t[1:])
		if err != nil {
			return nil, fmt.Errorf("host pattern %q: %w", t, err)
		}
		var out []string
		for _, h := range inv.order {
			if re.MatchString(h) {
				out = append(out, h)
			}
		}
		return out, nil
	}
	if m := sliceRe.FindStringSubmatch(t); m != nil {
		base, err := inv.term(m[1])
		if err != nil {
			return nil, err
		}
		return slice(base, m[2], m[3] != "", m[4], t)
	}
	if name, ok := strings.CutPrefix(t, rolePrefix); ok {
		r, err := inv.Role(name)
		if err != nil {
			return nil, fmt.Errorf("host pattern %q: %w", t, err)
		}
		return r.Hosts, nil
	}
	if _, ok := inv.groups[t]; ok {
		return inv.GroupHosts(t), nil
	}
	if _, ok := inv.Host(t); ok {
		return []string{t}, nil
	}
	if strings.ContainsAny(t, "*?[") {
		var out []string
		seen := map[string]bool{}
		for _, g := range inv.gorder {
			if ok, _ := path.Match(t, g); ok {
				for _, h := range inv.GroupHosts(g) {
					if !seen[h] {
						seen[h] = true
						out = append(out, h)
					}
				}
			}
		}
		for _, h := range inv.order {
			if ok, _ := path.Match(t, h); ok && !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("host pattern %q: no such host or group", t)
}

func slice(hosts []string, a string, isRange bool, b, term string) ([]string, error) {
	n := len(hosts)
	idx := func(s string, def int) (int, error) {
		if s == "" {
			return def, nil
		}
		i, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("host pattern %q: bad index %q", term, s)
		}
		if i < 0 {
			i += n
		}
		return i, nil
	}
	start, err := idx(a, 0)
	if err != nil {
		return nil, err
	}
	if !isRange {
		if start < 0 || start >= n {
			return nil, fmt.Errorf("host pattern %q: index out of range (%d hosts)", term, n)
		}
		return []string{hosts[start]}, nil
	}
	// As in current Ansible, the end index is exclusive: web[0:2] is 2 hosts.
	end, err := idx(b, n)
	if err != nil {
		return nil, err
	}
	start, end = max(start, 0), min(end, n)
	if start >= end {
		return nil, nil
	}
	return append([]string(nil), hosts[start:end]...), nil
}
