#!/usr/bin/env bash
# Builds etcd and etcdctl from Go modules into $CACHE/etcd/vX.Y.Z/.
#   build-etcd.sh 3.6.8
set -euo pipefail
. "$(dirname "$0")/timing.sh"
ver=${1#v}
cache=${KUBEPLAY_LAB_CACHE:-$HOME/.cache/kubeplay/lab}
# one build of a version at a time (a test run and make lab-up may race)
mkdir -p "$cache/build"
exec 9>"$cache/build/etcd-v$ver.lock"
flock 9
out=$cache/etcd/v$ver
if [ -x "$out/etcd" ] && [ -x "$out/etcdctl" ]; then echo "etcd v$ver: cached in $out"; timing_record "build etcd v$ver" cached; exit 0; fi
work=$cache/build/etcd-v$ver
mkdir -p "$work" "$out"
cd "$work"
cat > go.mod <<MOD
module kubeplay.lab/etcd

go 1.24

require (
	go.etcd.io/etcd/server/v3 v$ver
	go.etcd.io/etcd/etcdctl/v3 v$ver
)
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
GO
echo "etcd v$ver: resolving modules"
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>tidy.log || { cat tidy.log >&2; exit 1; }
echo "etcd v$ver: building"
CGO_ENABLED=0 go build -tags tools -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
CGO_ENABLED=0 go build -tags tools -trimpath -ldflags "-s -w" -o "$out/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3
mv "$out/etcd.tmp" "$out/etcd"; mv "$out/etcdctl.tmp" "$out/etcdctl"
echo "etcd v$ver: built into $out"
timing_record "build etcd v$ver" built
