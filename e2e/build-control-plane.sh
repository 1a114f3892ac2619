#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy, once per version,
# into ~/.cache/haven (outside the repo), and prints the bin directory.
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl: e2e/tools (go.mod)
#   kwok, helm: `go install` at the pinned versions
# Progress goes to stderr; stdout is only the bin directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/versions.env"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}"
bin="$cache/bin/k8s-${K8S_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
k8s_tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)
export GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0

# shellcheck disable=SC2034  # read by build-lib.sh
BUILD_PREFIX=control-plane
# shellcheck source=e2e/build-lib.sh
source "$here/build-lib.sh"
missing() { missing_in "$bin" "$@"; }

mkdir -p "$bin"
if missing "${k8s_tools[@]}"; then
  ldflags="$(k8s_ldflags)"
  say "cold build of Kubernetes ${K8S_VERSION} + etcd into $bin (first run only; about 6-10 min on 2 cores)"
  (cd "$here/tools" && with_heartbeat "${k8s_tools[*]}" go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    go.etcd.io/etcd/server/v3 \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl)
  mv "$bin/server" "$bin/etcd"   # go names etcd's binary after its module path (go.etcd.io/etcd/server/v3)
fi
if missing kwok; then
  say "building kwok ${KWOK_VERSION}"
  GOBIN="$bin" with_heartbeat kwok go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
fi
if missing helm; then
  say "building helm ${HELM_VERSION}"
  GOBIN="$bin" with_heartbeat helm go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi
echo "$bin"
