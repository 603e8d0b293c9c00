#!/usr/bin/env bash
# Builds the Kubernetes components the lab runs, from Go modules, with real
# version stamps, into $CACHE/kube/vX.Y.Z/. Rebuilds only what is missing.
#   build-kube.sh 1.36.3                  (control plane, kubeadm, kubectl)
#   build-kube.sh 1.36.2 kubeadm kubectl  (only these)
set -euo pipefail
. "$(dirname "$0")/timing.sh"
ver=${1#v}
shift
cache=${KUBEPLAY_LAB_CACHE:-$HOME/.cache/kubeplay/lab}
# one build of a version at a time (a test run and make lab-up may race)
mkdir -p "$cache/build"
exec 9>"$cache/build/kube-v$ver.lock"
flock 9
out=$cache/kube/v$ver
bins=(kube-apiserver kube-controller-manager kube-scheduler kubeadm kubectl)
if [ $# -gt 0 ]; then bins=("$@"); fi
missing=0
for b in "${bins[@]}"; do [ -x "$out/$b" ] || missing=1; done
what="build kube v$ver"; [ $# -gt 0 ] && what+=" ($*)"
if [ $missing = 0 ]; then echo "kube v$ver: cached in $out"; timing_record "$what" cached; exit 0; fi

major=${ver%%.*}; rest=${ver#*.}; minor=${rest%%.*}
work=$cache/build/kube-v$ver
mkdir -p "$work" "$out"
cd "$work"
# the upstream go.mod, read through the module proxy
gomod=$(go mod download -json "k8s.io/kubernetes@v$ver" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || { echo "cannot read go.mod of k8s.io/kubernetes@v$ver" >&2; exit 1; }
{
  echo "module kubeplay.lab/kube"
  echo
  echo "go $(sed -n 's/^go //p' "$gomod")"
  echo
  echo "require k8s.io/kubernetes v$ver"
  echo
  # every published staging module pinned to the matching v0.Y.Z
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\1#p' "$gomod" |
    grep -v -e '^k8s.io/sample-cli-plugin$' -e '^k8s.io/sample-controller$' |
    while read -r m; do echo "replace $m => $m v0.$minor.${ver##*.}"; done
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
echo "kube v$ver: resolving modules"
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>tidy.log || { cat tidy.log >&2; exit 1; }
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ld=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld+=" -X $p.gitVersion=v$ver -X $p.gitMajor=$major -X $p.gitMinor=$minor"
  ld+=" -X $p.gitTreeState=clean -X $p.gitCommit=kubeplay-lab -X $p.buildDate=$date"
done
# one go build for every missing binary: a binary links while the next
# one's packages still compile, so both cores stay busy
pkgs=()
for b in "${bins[@]}"; do
  [ -x "$out/$b" ] || pkgs+=("k8s.io/kubernetes/cmd/$b")
done
echo "kube v$ver: building ${pkgs[*]##*/} ($(date +%T))"
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -tags tools -trimpath -ldflags "-s -w$ld" -o "$tmp/" "${pkgs[@]}"
for p in "${pkgs[@]}"; do mv "$tmp/${p##*/}" "$out/${p##*/}"; done
echo "kube v$ver: built into $out"
timing_record "$what" built
