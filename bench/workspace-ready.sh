#!/usr/bin/env bash
# Time from `kubectl apply` of a Workspace to its phase Ready (environment pod Running on the
# kwok node), one workspace at a time, against the local control plane with the operator
# running. Usage: bench/workspace-ready.sh [N]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"
data=$(mktemp -d)
own_cluster=""
finish() {
  if [ -n "${operator:-}" ]; then
    # Its workspaces go while the operator still runs, so their teardown (finalizer) runs.
    kubectl delete workspaces -l bench.haven.io/run=serial --wait=true --timeout=120s >/dev/null 2>&1 || true
    kill "$operator" 2>/dev/null || true
    wait "$operator" 2>/dev/null || true
  fi
  rm -rf "$data" "$data.log"
  [ -z "$own_cluster" ] || e2e/cluster.sh down
}
trap finish EXIT
if [ -z "${KUBECONFIG:-}" ]; then
  export HAVEN_CLUSTER_DIR="$PWD/.bench-cluster"
  own_cluster=1
  KUBECONFIG=$(e2e/cluster.sh up)
  export KUBECONFIG
fi
cargo build --quiet --release --locked -p haven
haven="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/haven"
"$haven" crd | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd/workspaces.haven.io >/dev/null
kubectl create namespace haven-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The permit's one dataset is prepared by the operator from this raw source.
mkdir -p "$data/raw" && printf 'id\n1\n2\n3\n' >"$data/raw/survey.csv"
"$haven" run --data-root "$data" --leader-election=false --metrics-address 127.0.0.1:0 >"$data.log" 2>&1 &
operator=$!

cat <<YAML | kubectl apply -f - >/dev/null
apiVersion: haven.io/v1alpha1
kind: DataPermit
metadata: { name: bench-permit }
spec:
  permitId: BENCH
  holder: { organisation: Bench, principalInvestigator: pi@example.org }
  purpose: Statistics
  users: [bench@example.org]
  reviewers: [checker@example.org]
  validFrom: "2026-01-01T00:00:00Z"
  validUntil: "2030-01-01T00:00:00Z"
  datasets: [{ name: survey, source: survey.csv, columns: [{ name: id, rule: Hmac }] }]
  environment: { allowedImages: ["img:*"], maxWorkspaces: 100 }
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Active --timeout=60s datapermit/bench-permit >/dev/null

times=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  cat <<YAML | kubectl apply -f - >/dev/null
apiVersion: haven.io/v1alpha1
kind: Workspace
metadata: { name: bench-$i, labels: { bench.haven.io/run: serial } }
spec: { permit: bench-permit, users: [bench@example.org], image: "img:1" }
YAML
  kubectl wait --for=jsonpath='{.status.phase}'=Ready --timeout=60s "workspace/bench-$i" >/dev/null
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" '
  { t[NR] = $1; sum += $1 }
  END { printf "workspace apply -> Ready over %d runs: median %d ms, min %d ms, max %d ms, mean %.0f ms\n", n, t[int((n + 1) / 2)], t[1], t[n], sum / n }'
