#!/usr/bin/env bash
# Builds kwok from its Go module into $CACHE/kwok/vX.Y.Z/, with its stage
# configs (node heartbeat, pod lifecycle) copied from the module.
#   build-kwok.sh 0.8.0
set -euo pipefail
. "$(dirname "$0")/timing.sh"
ver=${1#v}
cache=${KUBEPLAY_LAB_CACHE:-$HOME/.cache/kubeplay/lab}
# one build of a version at a time (a test run and make lab-up may race)
mkdir -p "$cache/build"
exec 9>"$cache/build/kwok-v$ver.lock"
flock 9
out=$cache/kwok/v$ver
if [ -x "$out/kwok" ] && [ -d "$out/stage" ]; then echo "kwok v$ver: cached in $out"; timing_record "build kwok v$ver" cached; exit 0; fi
mkdir -p "$out"
echo "kwok v$ver: building"
GOBIN="$out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$ver"
src=$(go mod download -json "sigs.k8s.io/kwok@v$ver" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
rm -rf "$out/stage"; mkdir -p "$out/stage"
cp -r "$src/kustomize/stage/." "$out/stage/"
chmod -R u+w "$out/stage"
echo "kwok v$ver: built into $out"
timing_record "build kwok v$ver" built
