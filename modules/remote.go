package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// run runs a shell script on the host and fails on a non-zero exit.
// Scripts receive their variable inputs as positional arguments ($1, $2,
// ...), quoted by the transport, never pasted into the script text.
func runScript(ctx context.Context, c Conn, script string, args ...string) (ExecResult, error) {
	argv := append([]string{"/bin/sh", "-c", script, "kubeplay"}, args...)
	r, err := c.Exec(ctx, Cmd{Argv: argv})
	if err != nil {
		return r, err
	}
	if r.RC != 0 {
		return r, fmt.Errorf("%w: exit code %d: %s", ErrCommandFailed, r.RC, lastLine(r.Stderr, r.Stdout))
	}
	return r, nil
}

// readFile returns a file's content, and whether it exists.
func readFile(ctx context.Context, c Conn, path string) (string, bool, error) {
	r, err := c.Exec(ctx, Cmd{Argv: []string{"/bin/sh", "-c", `if [ -e "$1" ]; then cat -- "$1"; else exit 3; fi`, "kubeplay", path}})
	if err != nil {
		return "", false, err
	}
	switch r.RC {
	case 0:
		return r.Stdout, true, nil
	case 3:
		return "", false, nil
	}
	return "", false, fmt.Errorf("read %s: %w: exit code %d: %s", path, ErrCommandFailed, r.RC, lastLine(r.Stderr))
}

// writeFileAtomic replaces path with content: a temporary file beside it
// takes the original's mode and owner (then attrs, when given), receives the
// content (by stdin), is checked against the content's sha256, synced to
// disk and renamed over the original, so a reader sees the old or the new
// file, never half of one, and a stream cut short never replaces anything.
// With backup, the original is first copied to path.kubeplay-<timestamp>,
// whose name is returned. In a static pod directory the temporary file and
// the backup are hidden (sidePath).
func writeFileAtomic(ctx context.Context, c Conn, path, content string, backup bool, now time.Time, attrs fileAttrs) (string, error) {
	sum := sha256.Sum256([]byte(content))
	return writeAtomicFrom(ctx, c, path, strings.NewReader(content), hex.EncodeToString(sum[:]), backup, now, attrs)
}

// writeAtomicFrom is writeFileAtomic for content streamed from r, whose
// sha256 is sum.
func writeAtomicFrom(ctx context.Context, c Conn, path string, r io.Reader, sum string, backup bool, now time.Time, attrs fileAttrs) (string, error) {
	bak := ""
	if backup {
		bak = backupName(path, now)
	}
	script := `set -e
f=$1; bak=$2
tmp=$(mktemp "$7.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if [ -e "$f" ]; then
  cp -p -- "$f" "$tmp"
  if [ -n "$bak" ]; then cp -p -- "$f" "$bak"; fi
fi
if [ -n "$3" ]; then chmod "$3" -- "$tmp"; fi
if [ -n "$4$5" ]; then chown "$4${5:+:$5}" -- "$tmp"; fi
cat > "$tmp"
got=$(sha256sum < "$tmp" | cut -c1-64)
if [ "$got" != "$6" ]; then echo "the content arrived incomplete (sha256 $got); $f left as it was" >&2; exit 1; fi
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$f"
trap - EXIT`
	res, err := c.Exec(ctx, Cmd{Argv: []string{"/bin/sh", "-c", script, "kubeplay", path, bak, attrs.Mode, attrs.Owner, attrs.Group, sum, sidePath(path, ".kubeplay-tmp")}, Stdin: r})
	if err != nil {
		return "", err
	}
	if res.RC != 0 {
		return "", fmt.Errorf("write %s: %w: exit code %d: %s", path, ErrCommandFailed, res.RC, lastLine(res.Stderr))
	}
	return bak, nil
}

// unifiedDiff is a small line diff for --diff output: the changed lines
// with their line numbers (files edited by kubeplay are short).
func unifiedDiff(path, before, after string) string {
	if before == after {
		return ""
	}
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", path, path)
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x == y {
			continue
		}
		if i < len(a) {
			fmt.Fprintf(&out, "@%d -%s\n", i+1, x)
		}
		if i < len(b) {
			fmt.Fprintf(&out, "@%d +%s\n", i+1, y)
		}
	}
	return out.String()
}
