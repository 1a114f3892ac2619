#!/usr/bin/env bash
# Builds what a real node needs, once per version, into ~/.cache/haven, and prints
# the bin directory:
#   kubelet, kube-proxy          e2e/tools (the control plane's Kubernetes version)
#   kube-router                  NetworkPolicy enforcer (its firewall controller only)
#   coredns                      cluster DNS, run as a pod
#   crane                        writes OCI images from local files (no container engine)
# and installs the Debian packages the node runs on (containerd, runc, CNI plugins,
# iptables, ipset, conntrack) when they are missing. Progress on stderr; stdout is
# only the bin directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/versions.env"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}"
bin="$cache/bin/node-k8s-${K8S_VERSION}_kube-router-${KUBE_ROUTER_VERSION}_coredns-${COREDNS_VERSION}_crane-${CRANE_VERSION}"
export GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0
# shellcheck disable=SC2034  # read by build-lib.sh
BUILD_PREFIX=node
# shellcheck source=e2e/build-lib.sh
source "$here/build-lib.sh"
missing() { missing_in "$bin" "$@"; }

debian_packages=(containerd runc containernetworking-plugins iptables ipset conntrack)
absent=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || absent+=("$p")
done
if [ "${#absent[@]}" -gt 0 ]; then
  say "installing Debian packages: ${absent[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${absent[@]}"; } >&2
fi

mkdir -p "$bin"
if missing kubelet kube-proxy; then
  say "building kubelet and kube-proxy ${K8S_VERSION} into $bin (first run only; about 3 min with a warm Go cache)"
  (cd "$here/tools" && with_heartbeat "kubelet kube-proxy" go build -trimpath -ldflags "$(k8s_ldflags)" -o "$bin/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
fi
if missing kube-router; then
  say "building kube-router ${KUBE_ROUTER_VERSION} (about 4 min)"
  GOBIN="$bin" with_heartbeat kube-router go install -trimpath -ldflags "-s -w" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@${KUBE_ROUTER_VERSION}"
fi
if missing coredns; then
  say "building coredns ${COREDNS_VERSION} (about 7 min)"
  GOBIN="$bin" with_heartbeat coredns go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@${COREDNS_VERSION}"
fi
if missing crane; then
  say "building crane ${CRANE_VERSION}"
  GOBIN="$bin" with_heartbeat crane go install -trimpath -ldflags "-s -w" \
    "github.com/google/go-containerregistry/cmd/crane@${CRANE_VERSION}"
fi
echo "$bin"
