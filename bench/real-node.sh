#!/usr/bin/env bash
# On a real node, side by side in one run (root; brings up its own cluster in
# .bench-nodes-cluster and tears it down):
#   haven  `kubectl apply` of a Workspace -> its environment pod Running -> its IDE answering
#          HTTP from the gateway namespace (the operator, from its image, does the rest)
#   raw    `kubectl apply` of a namespace with the same environment pod (the StatefulSet and
#          Service the operator made, with emptyDir in place of the data-store volumes) ->
#          Running -> answering: what a pod on this node costs without Haven
# one workspace at a time, RUNS times each (default 15); then the isolation matrix's time.
# Usage: bench/real-node.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-15}"
bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH" HAVEN_CLUSTER_DIR="$PWD/.bench-nodes-cluster"
trap 'e2e/cluster.sh down >/dev/null 2>&1' EXIT
KUBECONFIG=$(e2e/nodes-cluster.sh)
export KUBECONFIG
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
image="haven.local/testenv:$version"
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

# The gateway namespace's prober, from which an IDE answers.
# (the namespace exists when the access gateway was installed, labelled Pod Security restricted)
kubectl create namespace haven-gateway --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n haven-gateway run probe --image="$image" --restart=Never \
  --overrides='{"spec":{"automountServiceAccountToken":false,"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"probe","image":"'"$image"'","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}' >/dev/null
kubectl -n haven-gateway wait --for=condition=Ready pod/probe --timeout=120s >/dev/null

kubectl apply -f - >/dev/null <<YAML
apiVersion: haven.io/v1alpha1
kind: DataPermit
metadata: { name: bench }
spec:
  permitId: BENCH-NODES
  holder: { organisation: Bench, principalInvestigator: pi@example.org }
  purpose: Statistics
  users: [bench@example.org]
  reviewers: [checker@example.org]
  validFrom: "2026-01-01T00:00:00Z"
  validUntil: "2030-01-01T00:00:00Z"
  datasets:
    - name: survey
      source: survey/2025.csv
      columns: [{ name: respondent_id, rule: Hmac }, { name: region, rule: Keep }, { name: answer, rule: Keep }]
  environment: { allowedImages: ["$image"], maxWorkspaces: 100 }
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Active --timeout=120s datapermit/bench >/dev/null

# until_running NS: waits for pod workspace-0 Running; until_answering NS: for its IDE's HTTP.
until_running() {
  until [ "$(kubectl -n "$1" get pod workspace-0 -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ]; do sleep 0.05; done
}
until_answering() {
  local ip=""
  until [ -n "$ip" ]; do ip=$(kubectl -n "$1" get pod workspace-0 -o jsonpath='{.status.podIP}'); done
  until kubectl -n haven-gateway exec probe -- /haven-testenv get "$ip:8888" --timeout-seconds 1 >/dev/null 2>&1; do sleep 0.05; done
}

results="$(mktemp)"
raw_template=""
for i in $(seq 1 "$runs"); do
  name="bench-$i"
  t0=$(now)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: haven.io/v1alpha1
kind: Workspace
metadata: { name: $name }
spec: { permit: bench, users: [bench@example.org], image: "$image", resources: { cpu: 100m, memory: 128Mi }, homeStorage: 1Gi }
YAML
  until kubectl get namespace "ws-$name" >/dev/null 2>&1; do sleep 0.05; done
  until_running "ws-$name"; t1=$(now)
  until_answering "ws-$name"; t2=$(now)
  echo "haven $(ms "$t0" "$t1") $(ms "$t0" "$t2")" >>"$results"
  if [ -z "$raw_template" ]; then
    # The operator's own environment objects, data-store volumes swapped for emptyDir.
    raw_template="$(kubectl -n "ws-$name" get statefulset,service workspace -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
for o in items:
    meta = o["metadata"]
    o["metadata"] = {"name": meta["name"], "labels": meta.get("labels", {})}
    o.pop("status", None)
    spec = o["spec"]
    if o["kind"] == "Service":
        for k in ("clusterIP", "clusterIPs"): spec.pop(k, None)
    else:
        pod = spec["template"]["spec"]
        pod["volumes"] = [{"name": v["name"], "emptyDir": {}} for v in pod["volumes"]]
        pod["containers"][0]["volumeMounts"] = [dict(m, readOnly=False) for m in pod["containers"][0]["volumeMounts"]]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))')"
  fi
  kubectl delete workspace "$name" --wait=false >/dev/null

  raw="raw-$i"
  t0=$(now)
  { kubectl create namespace "$raw" --dry-run=client -o yaml; echo "---"; echo "$raw_template"; } |
    sed "s/\"namespace\": \"ws-$name\"//" | kubectl apply -n "$raw" -f - >/dev/null
  until_running "$raw"; t1=$(now)
  until_answering "$raw"; t2=$(now)
  echo "raw $(ms "$t0" "$t1") $(ms "$t0" "$t2")" >>"$results"
  kubectl delete namespace "$raw" --wait=false >/dev/null
  echo "[bench] run $i: $(tail -2 "$results" | tr '\n' ' ')" >&2
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]
print(f"{'path':<6} {'n':>3} {'Running p50':>12} {'p99':>6} {'answering p50':>14} {'p99':>6}   (ms from kubectl apply)")
for path in ("haven", "raw"):
    run = [int(r[1]) for r in rows if r[0] == path]
    ans = [int(r[2]) for r in rows if r[0] == path]
    print(f"{path:<6} {len(run):>3} {statistics.median(run):>12.0f} {q(run, 99):>6} {statistics.median(ans):>14.0f} {q(ans, 99):>6}")
PY
rm -f "$results"

echo "[bench] the isolation matrix (4 allowed, 13 blocked with relaxed twins):" >&2
HAVEN_NODES_DATA="$HAVEN_CLUSTER_DIR/data" HAVEN_TESTENV_IMAGE="$image" \
  cargo test --quiet --locked -p haven-e2e-nodes --test isolation -- --nocapture 2>&1 | grep -E '^(setup|matrix)'
