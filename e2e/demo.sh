#!/usr/bin/env bash
# `make demo`: a local control plane (unless KUBECONFIG points at a cluster), Haven's CRDs,
# the examples applied, and what `kubectl get` shows. The cluster keeps running afterwards.
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

say "Installing the CRDs"
cargo run --quiet --locked -p haven -- crd | kubectl apply --server-side --field-manager=haven-demo -f -
kubectl wait --for=condition=Established --timeout=60s \
  crd/datapermits.haven.io crd/workspaces.haven.io crd/airlockrequests.haven.io

say "The operator"
echo "Haven's controllers are not written yet (issue 4), so nothing reconciles the examples:"
echo "they are stored and validated by the API server, and show no phase."

say "Applying examples/"
kubectl apply -f examples/datapermit.yaml -f examples/datapermit-minimal.yaml
kubectl apply -f examples/workspace.yaml -f examples/workspace-minimal.yaml
# The operator will create each workspace's namespace; until it exists, the demo does.
for ns in ws-cancer-outcomes ws-minimal; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
done
kubectl apply -f examples/airlockrequest-export.yaml -f examples/airlockrequest-export-minimal.yaml

say "kubectl get datapermits,workspaces"
kubectl get datapermits,workspaces
say "kubectl get airlockrequests -A"
kubectl get airlockrequests -A

say "A rejected manifest: validUntil before validFrom"
kubectl apply -f e2e/invalid/permit-ends-before-start.yaml 2>&1 | sed 's/^/  /' || true

if [ -n "${started_here:-}" ]; then
  say "The cluster keeps running"
  echo "  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH"
  echo "  make cluster-down    # to stop it"
fi
