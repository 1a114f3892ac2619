#!/usr/bin/env bash
# The real-node tier: a local control plane with a real node (e2e/node.sh) and an OpenID
# provider (e2e/idp.sh), the chart installed with the operator's own image, and the tests of
# e2e/nodes (packets, the environment from inside, the operator's pod, logins). Always torn
# down, then the host is compared with how it was found. Where a real node cannot run (not
# root, no network namespaces), the tier says so loudly and is skipped;
# HAVEN_REQUIRE_REAL_NODE=1 (CI) makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[nodes] $*" >&2; }

skip() {
  say "================================================================"
  say "SKIPPED: the real-node tier did not run: $*"
  say "Isolation by packets, the environment from inside and the operator's pod are UNTESTED."
  say "================================================================"
  [ "${HAVEN_REQUIRE_REAL_NODE:-0}" = 1 ] && exit 1
  exit 0
}
[ "$(id -u)" = 0 ] || skip "it needs root (network namespaces, cgroups, mounts)"
unshare --net true 2>/dev/null || skip "network namespaces cannot be created here"

bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"
export HAVEN_CLUSTER_DIR="$PWD/.nodes-cluster"
# One host-comparing tier at a time (run-federation.sh takes the same lock); what is started
# long-lived gets `8>&-`, so no daemon keeps the lock after the tier.
exec 8>"${TMPDIR:-/tmp}/haven-host-window.lock"
flock -n 8 || { say "waiting for another real-node tier to finish (host-window lock)"; flock 8; }
before="$(mktemp)"; after="$(mktemp)"
e2e/host-state.sh >"$before"
finish() {
  local rc=$?
  e2e/cluster.sh down || rc=1
  e2e/host-state.sh >"$after"
  if ! diff -u "$before" "$after" >&2; then
    say "FAILED: the host differs from how the tier found it (above)"
    rc=1
  else
    say "host state after teardown: as found (network namespaces, links, rules, ipsets, mounts, cgroups, sysctls)"
  fi
  rm -f "$before" "$after"
  exit "$rc"
}
trap finish EXIT

e2e/build-browser.sh   # headless Chromium for nodes/tests/browser.rs (Debian packages, when missing)
KUBECONFIG=$(e2e/nodes-cluster.sh 8>&-)
export KUBECONFIG
data="$HAVEN_CLUSTER_DIR/data"

export HAVEN_NODES_DATA="$data"
# The OpenID provider's URLs and this cluster's fresh credentials (e2e/idp.sh).
export HAVEN_IDP_ENV="$HAVEN_CLUSTER_DIR/idp.env"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
export HAVEN_TESTENV_IMAGE="haven.local/testenv:$version"
# The name the node imported (e2e/node.sh); the archive is cached, so this only reads it.
python_tes="$(images/python-tes.sh)"
export HAVEN_PYTHON_TES_IMAGE="${python_tes%% *}"
cargo test --locked --no-fail-fast -p haven-e2e-nodes -- --nocapture 8>&-
