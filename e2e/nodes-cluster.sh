#!/usr/bin/env bash
# A local control plane with one real node and no fake ones, Haven's chart installed as a
# platform engineer would (defaults; the image from the node's containerd, never pulled; the
# data store a directory in the state dir, with a raw survey at raw/survey/2025.csv). Used by
# the real-node tier (run-nodes.sh) and its benchmark (bench/real-node.sh).
# The OpenID provider (e2e/idp.sh) runs beside it unless HAVEN_IDP=0; its credentials are in
# $HAVEN_CLUSTER_DIR/idp.env. Needs HAVEN_CLUSTER_DIR; prints the admin kubeconfig path.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HAVEN_CLUSTER_DIR:?set HAVEN_CLUSTER_DIR}"
kubeconfig=$(HAVEN_REAL_NODE=1 HAVEN_KWOK_NODES=0 HAVEN_IDP="${HAVEN_IDP:-1}" e2e/cluster.sh up)
export KUBECONFIG="$kubeconfig"
data="$HAVEN_CLUSTER_DIR/data"
mkdir -p "$data/raw/survey"
{
  echo "respondent_id,region,answer"
  for i in $(seq 1 200); do echo "R$((100000 + i * 7919 % 90000)),region-$((i % 5)),$((i % 4))"; done
} >"$data/raw/survey/2025.csv"
mkdir -p "$data/audit"
chown -R 65532:65532 "$data"
# With the OpenID provider, the access gateway too (e2e/gateway-values.sh: its Secrets, NodePort 30443).
gateway_values=()
if [ -f "$HAVEN_CLUSTER_DIR/idp.env" ]; then gateway_values=(-f "$(e2e/gateway-values.sh)"); fi
helm upgrade --install haven charts/haven --namespace haven-system --create-namespace \
  --set image.pullPolicy=Never --set dataStore.hostPath="$data" "${gateway_values[@]}" --wait --timeout 180s >/dev/null
echo "[nodes] chart installed; operator: $(kubectl -n haven-system get pods -l app.kubernetes.io/name=haven \
  -o jsonpath='{.items[0].spec.containers[0].image} on {.items[0].spec.nodeName}')" >&2
echo "$kubeconfig"
