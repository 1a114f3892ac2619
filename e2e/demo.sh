#!/usr/bin/env bash
# `make demo`: a local control plane (unless KUBECONFIG points at a cluster), Haven's CRDs,
# the operator, the examples, and what `kubectl get` shows. The cluster keeps running.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"
if [ -z "${KUBECONFIG:-}" ]; then
  say "Starting the local control plane"
  KUBECONFIG=$(e2e/cluster.sh up)
  export KUBECONFIG
  started_here=1
fi
data_root="${HAVEN_DEMO_DATA:-$(dirname "$KUBECONFIG")/demo-data}"

say "Building Haven and installing the CRDs"
cargo build --quiet --locked -p haven
haven="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/haven"
"$haven" crd | kubectl apply --server-side --field-manager=haven-demo -f -
kubectl wait --for=condition=Established --timeout=60s \
  crd/datapermits.haven.io crd/workspaces.haven.io crd/airlockrequests.haven.io
kubectl create namespace haven-system --dry-run=client -o yaml | kubectl apply -f -

say "Raw sources in the data store (synthetic; a custodian would put real ones here)"
mkdir -p "$data_root/raw/registry" "$data_root/raw/survey"
cargo run --quiet --release --locked -p haven-data --example synthetic_registry -- 20000 \
  "$data_root/raw/registry/cancer-2024.csv" \
  nhs_number,date_of_birth,postcode,age_at_diagnosis,sex,icd10_code,free_text_notes
{
  echo "respondent_id,region,answer"
  for i in $(seq 1 200); do echo "R$((100000 + i * 7919 % 90000)),region-$((i % 5)),$((i % 4))"; done
} > "$data_root/raw/survey/2025.csv"
head -3 "$data_root/raw/registry/cancer-2024.csv"

say "Starting the operator (data store: $data_root; log: $data_root.log)"
"$haven" run --data-root "$data_root" >"$data_root.log" 2>&1 &
operator=$!
trap 'kill "$operator" 2>/dev/null || true' EXIT

say "Applying examples/"
kubectl apply -f examples/datapermit.yaml -f examples/datapermit-minimal.yaml
kubectl wait --for=jsonpath='{.status.phase}'=Active --timeout=120s datapermit/cancer-outcomes-2026 datapermit/minimal-permit
say "Prepared extract of cancer-registry (first rows) and its report's summary"
head -3 "$data_root/extracts/cancer-outcomes-2026/cancer-registry/data.csv"
kubectl get datapermit cancer-outcomes-2026 -o jsonpath='{.status.datasets}'; echo
kubectl apply -f examples/workspace.yaml -f examples/workspace-minimal.yaml
kubectl wait --for=jsonpath='{.status.phase}'=Ready --timeout=120s workspace/cancer-outcomes workspace/minimal
kubectl apply -f examples/airlockrequest-export.yaml -f examples/airlockrequest-export-minimal.yaml

say "kubectl get datapermits,workspaces"
kubectl get datapermits,workspaces
say "What workspace cancer-outcomes became (namespace ws-cancer-outcomes)"
kubectl get networkpolicies,roles,rolebindings,resourcequotas,limitranges,pvc,statefulsets,services,pods -n ws-cancer-outcomes
kubectl get namespace ws-cancer-outcomes --show-labels
say "kubectl get airlockrequests -A (the airlock controller is a later step)"
kubectl get airlockrequests -A

say "A rejected manifest: validUntil before validFrom"
kubectl apply -f e2e/invalid/permit-ends-before-start.yaml 2>&1 | sed 's/^/  /' || true

say "Done; the operator stops now, the cluster keeps running"
if [ -n "${started_here:-}" ]; then
  echo "  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH"
  echo "  $haven run --data-root $data_root   # to run the operator again"
  echo "  make cluster-down                    # to stop the cluster"
fi
