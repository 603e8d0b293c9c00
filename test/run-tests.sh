#!/usr/bin/env bash
# The README's test command (make test): lint, the lab (root; cached
# builds), then every test with the race detector. The upgrade test moves
# the shared lab for good (certificates, then versions), so test/upgrade
# runs alone, last. Packages run one at a time (-p 1): several stop and
# start lab components (a kubelet, an etcd member) that others check.
#
# Every phase is timed into $KUBEPLAY_TIMINGS (package test/timing). When
# the caller did not set it (.ci/run does, and prints the table itself),
# the table is printed here at the end, also when a phase fails.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
if [ -z "${KUBEPLAY_TIMINGS:-}" ]; then
  KUBEPLAY_TIMINGS=$(mktemp -d)/timings.tsv
  export KUBEPLAY_TIMINGS
  trap 'echo; bin/timing table' EXIT
fi
$GO build -o bin/timing ./test/timing/cmd/timing || exit 1
T=bin/timing

$T run "lint" -- make -s lint || exit 1
$T run "lab-up (total)" -- make -s lab-up || exit 1

# -p 1 below also serialises compiling: build every test binary first,
# both cores at once (-exec /bin/true runs none of them)
log=$(mktemp)
if ! $T run "go test: compile test binaries (parallel)" -- $GO test -race -count=1 -exec /bin/true ./... >"$log" 2>&1; then
  cat "$log"; exit 1
fi
rm -f "$log"

status=0
start=$SECONDS
$GO test -json -race -count=1 -p 1 -timeout 45m ./... 2>&1 | $T gotest || status=1
printf 'go test ./... (total, builds included)\t%s\t%s\n' $((SECONDS - start)) \
  "$([ $status = 0 ] && echo pass || echo fail)" >> "$KUBEPLAY_TIMINGS"
[ $status = 0 ] || exit 1

start=$SECONDS
KUBEPLAY_EXCLUSIVE_TESTS=1 $GO test -json -race -count=1 -timeout 30m ./test/upgrade 2>&1 | $T gotest -v || status=1
printf 'go test ./test/upgrade (total, builds included)\t%s\t%s\n' $((SECONDS - start)) \
  "$([ $status = 0 ] && echo pass || echo fail)" >> "$KUBEPLAY_TIMINGS"
exit $status
