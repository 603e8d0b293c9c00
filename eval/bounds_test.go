package eval

import (
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// Expressions that used to exhaust memory fail at once with ErrTooBig, in
// bounded memory; everyday uses of the same functions are unchanged.
func TestHostileExpressionsAreBounded(t *testing.T) {
	c, e := env(t)
	for _, src := range []string{
		`reduce(1..40, #acc + #acc, "a")`,
		`repeat(repeat("a", 100000), 100000)`,
		`toYaml(reduce(1..30, [#acc, #acc], 1))`,
		`toJSON(reduce(1..30, [#acc, #acc], 1))`,
		`string(reduce(1..30, [#acc, #acc], 1))`,
		`len(flatten(reduce(1..30, [#acc, #acc], 1)))`,
		`let a = repeat("x", 1000); let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; let g = f + f; let h = g + g; let i = h + h; let j = i + i; let k = j + j; len(k + k)`,
		`replace(repeat("a", 100000), "a", repeat("b", 1000))`,
		`join(map(1..100000, repeat("x", 100)), ",")`,
	} {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		x, err := c.CompileAny(src)
		if err != nil {
			t.Errorf("%s: compile: %v", src, err)
			continue
		}
		_, err = x.Eval(e)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooBig) {
			t.Errorf("%s: want ErrTooBig, got %v", src, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 512<<20 {
			t.Errorf("%s: allocated %d MiB", src, grew>>20)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: took %s", src, d)
		}
	}
	tpl, err := c.CompileTemplate(`{{ reduce(1..30, [#acc, #acc], 1) }} and text`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Render(e); !errors.Is(err, ErrTooBig) {
		t.Errorf("rendering a huge value into text: %v", err)
	}
}

func TestBoundedFunctionsKeepTheirResults(t *testing.T) {
	c, e := env(t)
	for src, want := range map[string]any{
		`"a" + "b"`:                                "ab",
		`params.version + "-1.1"`:                  "1.36.3-1.1",
		`params.n + 1`:                             4,
		`out.stdout + "!"`:                         "hello!",
		`repeat("ab", 3)`:                          "ababab",
		`replace("a.b.c", ".", "-")`:               "a-b-c",
		`join(["a", "b"], ",")`:                    "a,b",
		`join(["a", "b"])`:                         "ab",
		`toJSON({"a": 1})`:                         "{\n  \"a\": 1\n}",
		`string(3)`:                                "3",
		`flatten([[1, 2], [3]])`:                   []any{1, 2, 3},
		`reduce(1..4, #acc + #, 0)`:                10,
		`let s = "x"; s + s + s`:                   "xxx",
		`[1, 2] | map(# * 2) | sum()`:              6,
		`upper(params.version + "a") == "1.36.3A"`: true,
	} {
		x, err := c.CompileAny(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		got, err := x.Eval(e)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, %v; want %#v", src, got, err, want)
		}
	}
	// a number plus a string is still refused when the playbook loads
	if _, err := c.CompileAny(`params.n + "x"`); err == nil {
		t.Error("int + string compiled")
	}
}
