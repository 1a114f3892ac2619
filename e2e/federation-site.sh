#!/usr/bin/env bash
# One Haven site of the federation tier (run-federation.sh): a local control plane in
# $HAVEN_CLUSTER_DIR (a real node or kwok, as HAVEN_REAL_NODE / HAVEN_KWOK_NODES say), Haven's
# CRDs and admission policies (crds/), the namespace haven-system with the tier ConfigMap the
# policies and the operator read (`haven-tiers`: the chart's, rendered as release `haven`,
# nothing else of the chart), and the site's data store <state>/data with a raw survey of ROWS
# rows at raw/survey/2025.csv (respondent_id,region,answer; ids, regions and answers differ per site).
# No operator: the tests start `haven run` and `haven federation` as host processes.
#
# Usage: e2e/federation-site.sh SITE ROWS   (needs HAVEN_CLUSTER_DIR; prints the admin kubeconfig)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HAVEN_CLUSTER_DIR:?set HAVEN_CLUSTER_DIR}"
[ $# -eq 2 ] || { sed -n '10p' "$0" | sed 's/^# //' >&2; exit 2; }
site="$1" rows="$2"
say() { echo "[federation] $site: $*" >&2; }

kubeconfig=$(e2e/cluster.sh up)
export KUBECONFIG="$kubeconfig"
kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl create namespace haven-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
helm template haven charts/haven --namespace haven-system --show-only templates/tiers.yaml |
  kubectl apply -f - >/dev/null

data="$HAVEN_CLUSTER_DIR/data"
mkdir -p "$data/raw/survey" "$data/audit"
# A deterministic survey of its own per site: ids carry the site's initial, regions are spread
# unevenly and differently per site, so a sum across sites shows which site each count came from.
initial="$(printf '%s' "${site:0:1}" | tr '[:lower:]' '[:upper:]')"
{
  echo "respondent_id,region,answer"
  for i in $(seq 1 "$rows"); do
    echo "$initial$((100000 + i * 7919 % 90000)),region-$(((i * i + i / 3 + rows) % 5)),$(((i * i + rows * i / 7) % 4))"
  done
} >"$data/raw/survey/2025.csv"
# Workspace pods run as 65532 and join the data store's group (the operator reads it from the
# root's owner); setgid, so what the operator (root, on the host) creates stays in that group.
chown -R 65532:65532 "$data"
find "$data" -type d -exec chmod g+s {} +
say "$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {end}')nodes; $rows survey rows in $data"
echo "$kubeconfig"
