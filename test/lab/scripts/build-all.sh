#!/usr/bin/env bash
# Builds (or finds cached) every component the lab runs. Versions are the
# lab's: two Kubernetes minors, the etcd they ship with, and kwok.
set -euo pipefail
here=$(dirname "$0")
override=${KUBE_VERSIONS:-}
. "$here/versions.env"
KUBE_VERSIONS=${override:-$KUBE_VERSIONS}
for v in $KUBE_VERSIONS; do bash "$here/build-kube.sh" "$v"; done
for v in ${KUBE_EXTRA_VERSIONS:-}; do bash "$here/build-kube.sh" "$v" kubeadm kubectl; done
for v in $ETCD_VERSIONS; do bash "$here/build-etcd.sh" "$v"; done
bash "$here/build-kwok.sh" "$KWOK_VERSION"
