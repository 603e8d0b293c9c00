package eval

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/goccy/go-yaml"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubeplay/kubeplay/internal/tomledit"
)

// Version is a parsed semantic version as expressions see it.
type Version struct {
	Major int    `expr:"major"`
	Minor int    `expr:"minor"`
	Patch int    `expr:"patch"`
	Pre   string `expr:"pre"`
	Raw   string `expr:"raw"`
}

// ParseVersion accepts "1.37.2", "v1.37.2", "1.37", "1.37.2-1.1" (a Debian
// revision after the patch is kept in Pre).
func ParseVersion(s string) (Version, error) {
	raw := s
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	pre := ""
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		pre, s = s[i+1:], s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("version %q: want MAJOR.MINOR[.PATCH]", raw)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("version %q: %q is not a number", raw, p)
		}
		nums[i] = n
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2], Pre: pre, Raw: raw}, nil
}

// Compare orders versions by major, minor, patch (pre-release ignored).
func (v Version) Compare(o Version) int {
	for _, d := range []int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

// CompareVersions compares two version strings.
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

// functions returns the helper functions with their static signatures.
func functions() []expr.Option {
	return []expr.Option{
		expr.Function("semver", func(p ...any) (any, error) {
			return ParseVersion(p[0].(string))
		}, new(func(string) Version)),
		expr.Function("versionCompare", func(p ...any) (any, error) {
			return CompareVersions(p[0].(string), p[1].(string))
		}, new(func(string, string) int)),
		expr.Function("minorOf", func(p ...any) (any, error) {
			v, err := ParseVersion(p[0].(string))
			if err != nil {
				return nil, err
			}
			return fmt.Sprintf("%d.%d", v.Major, v.Minor), nil
		}, new(func(string) string)),
		expr.Function("nextMinor", func(p ...any) (any, error) {
			v, err := ParseVersion(p[0].(string))
			if err != nil {
				return nil, err
			}
			return fmt.Sprintf("%d.%d", v.Major, v.Minor+1), nil
		}, new(func(string) string)),
		expr.Function("regexMatch", func(p ...any) (any, error) {
			re, err := regexp.Compile(p[0].(string))
			if err != nil {
				return nil, err
			}
			return re.MatchString(p[1].(string)), nil
		}, new(func(string, string) bool)),
		expr.Function("default", func(p ...any) (any, error) {
			if isEmpty(p[0]) {
				return p[1], nil
			}
			return p[0], nil
		}, new(func(any, any) any)),
		expr.Function("toYaml", func(p ...any) (any, error) {
			if err := checkSize(p[0]); err != nil {
				return nil, err
			}
			b, err := yaml.Marshal(p[0])
			return string(b), err
		}, new(func(any) string)),
		expr.Function("fromYaml", func(p ...any) (any, error) {
			var out any
			err := yaml.Unmarshal([]byte(p[0].(string)), &out)
			return out, err
		}, new(func(string) any)),
		// tomlGet(text, table, key): a key of a table of a TOML document
		// (containerd's config), as TOML reads it; nil when absent
		expr.Function("tomlGet", func(p ...any) (any, error) {
			return tomledit.Get([]byte(p[0].(string)), p[1].(string), p[2].(string))
		}, new(func(string, string, string) any)),
		expr.Function("quantity", func(p ...any) (any, error) {
			q, err := resource.ParseQuantity(p[0].(string))
			if err != nil {
				return nil, fmt.Errorf("quantity %q: %w", p[0], err)
			}
			return q.AsApproximateFloat64(), nil
		}, new(func(string) float64)),
		expr.Function("b64", func(p ...any) (any, error) {
			return base64.StdEncoding.EncodeToString([]byte(p[0].(string))), nil
		}, new(func(string) string)),
		expr.Function("b64decode", func(p ...any) (any, error) {
			b, err := base64.StdEncoding.DecodeString(p[0].(string))
			return string(b), err
		}, new(func(string) string)),
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
