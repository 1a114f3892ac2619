#!/usr/bin/env bash
# Runs the end-to-end tests. With KUBECONFIG set, against that cluster; otherwise against a
# fresh local control plane (its own state dir, so it never touches `make cluster-up`'s) that
# is torn down afterwards, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"

HAVEN_E2E_DATA=$(mktemp -d)   # the operator tests' data stores
export HAVEN_E2E_DATA
trap 'rm -rf "$HAVEN_E2E_DATA"' EXIT
if [ -z "${KUBECONFIG:-}" ]; then
  export HAVEN_CLUSTER_DIR="$PWD/.e2e-cluster"
  trap 'e2e/cluster.sh down; rm -rf "$HAVEN_E2E_DATA"' EXIT
  KUBECONFIG=$(e2e/cluster.sh up)
  export KUBECONFIG
  local_cluster=1
fi

# S11: every operator process the tests start runs as the Helm chart's ServiceAccount (see
# operator_kubeconfig() in e2e/src/lib.rs), not as admin, so the whole suite proves the chart's
# RBAC is enough. This release is CRDs and RBAC only: no operator pod (no image here) and no
# admission policy (the tests install the generated one; e2e/tests/chart.rs checks the chart's).
chart_release=haven-e2e
helm upgrade --install "$chart_release" charts/haven --namespace haven-system --create-namespace \
  --set replicas=0 --set admissionPolicy.enabled=false --wait >/dev/null
[ -n "${local_cluster:-}" ] ||
  trap 'helm uninstall "$chart_release" -n haven-system >/dev/null; rm -rf "$HAVEN_E2E_DATA"' EXIT
HAVEN_OPERATOR_KUBECONFIG="$HAVEN_E2E_DATA/operator.kubeconfig"
export HAVEN_OPERATOR_KUBECONFIG
# The release's tier ConfigMap (rendered from the chart's default tiers): the one its RBAC lets
# the operator read, and the one the tests' tier admission policy reads (e2e/src/lib.rs).
export HAVEN_TIER_CONFIG_MAP="$chart_release-tiers"
e2e/sa-kubeconfig.sh "$chart_release" haven-system "$HAVEN_OPERATOR_KUBECONFIG"
operator_user=$(KUBECONFIG=$HAVEN_OPERATOR_KUBECONFIG kubectl auth whoami -o jsonpath='{.status.userInfo.username}')
echo "[e2e] operators run as $operator_user"
cargo build --locked -p haven
HAVEN_BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/haven"
export HAVEN_BIN
cargo build --locked -p kubectl-haven   # the kubectl plugin, driven by e2e/tests/plugin.rs
export KUBECTL_HAVEN_BIN="${HAVEN_BIN%/haven}/kubectl-haven"
echo "[e2e] against $(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
cargo test --locked --no-fail-fast -p haven-e2e
