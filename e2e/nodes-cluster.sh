#!/usr/bin/env bash
# A local control plane with one real node and no fake ones, Haven's chart installed as a
# platform engineer would (defaults; the image from the node's containerd, never pulled; the
# data store a directory in the state dir, with a raw survey at raw/survey/2025.csv). Used by
# the real-node tier (run-nodes.sh) and its benchmark (bench/real-node.sh).
# Needs HAVEN_CLUSTER_DIR; prints the admin kubeconfig path.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HAVEN_CLUSTER_DIR:?set HAVEN_CLUSTER_DIR}"
kubeconfig=$(HAVEN_REAL_NODE=1 HAVEN_KWOK_NODES=0 e2e/cluster.sh up)
export KUBECONFIG="$kubeconfig"
data="$HAVEN_CLUSTER_DIR/data"
mkdir -p "$data/raw/survey"
{
  echo "respondent_id,region,answer"
  for i in $(seq 1 200); do echo "R$((100000 + i * 7919 % 90000)),region-$((i % 5)),$((i % 4))"; done
} >"$data/raw/survey/2025.csv"
chown -R 65532:65532 "$data"
helm upgrade --install haven charts/haven --namespace haven-system --create-namespace \
  --set image.pullPolicy=Never --set dataStore.hostPath="$data" --wait --timeout 180s >/dev/null
echo "[nodes] chart installed; operator: $(kubectl -n haven-system get pods -l app.kubernetes.io/name=haven \
  -o jsonpath='{.items[0].spec.containers[0].image} on {.items[0].spec.nodeName}')" >&2
echo "$kubeconfig"
