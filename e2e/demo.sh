#!/usr/bin/env bash
# `make demo`: a local control plane (unless KUBECONFIG points at a cluster), Haven's CRDs,
# the operator, the examples, and what `kubectl get` shows. The cluster keeps running.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"
# A real node (containerd, kubelet, CoreDNS, NetworkPolicies enforced; e2e/node.sh) where this
# machine allows one: the operator then runs from its image as the chart's pod and the
# workspaces' environments really start. HAVEN_DEMO_REAL_NODE=0 keeps the kwok-only demo.
real_node=0
if [ -z "${KUBECONFIG:-}" ] && [ "${HAVEN_DEMO_REAL_NODE:-1}" = 1 ] && [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
  real_node=1
fi
if [ -z "${KUBECONFIG:-}" ]; then
  if [ "$real_node" = 1 ]; then
    say "Starting the local control plane with a real node and an OpenID provider (first run builds their parts: ~11 min)"
    KUBECONFIG=$(HAVEN_REAL_NODE=1 HAVEN_KWOK_NODES=0 HAVEN_IDP=1 e2e/cluster.sh up)
  else
    say "Starting the local control plane (kwok nodes: no container runs)"
    KUBECONFIG=$(e2e/cluster.sh up)
  fi
  export KUBECONFIG
  started_here=1
fi
data_root="${HAVEN_DEMO_DATA:-$(dirname "$KUBECONFIG")/demo-data}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"

# On the real node nothing can be pulled: the examples' images become ones built here (JupyterLab
# from PyPI for cancer-outcomes, Haven's small test environment for minimal), sized for two cores.
examples() {
  if [ "$real_node" = 1 ]; then
    sed -e "s#quay.io/jupyter/scipy-notebook:2026-01-05#$jupyterlab#" \
      -e "s#quay.io/jupyter/minimal-notebook:2026-01-05#haven.local/testenv:$version#" \
      -e 's#resources: { cpu: "4", memory: 16Gi, gpu: 0 }#resources: { cpu: 500m, memory: 1Gi, gpu: 0 }#' \
      -e "s#^  image: haven.local/testenv:$version\$#&\n  resources: { cpu: 250m, memory: 256Mi }#" "$@"
  else
    cat "$@"
  fi
}

if [ "$real_node" = 0 ]; then
  say "Installing Haven with its Helm chart: CRDs, admission policy, RBAC"
  # kwok runs no container: the chart runs no pod (replicas=0) and the operator runs below as
  # a process with the chart's ServiceAccount, i.e. exactly its RBAC.
  # dataStore.hostPath: the operator's volumes are admitted only under the chart's data store.
  helm upgrade --install haven charts/haven --namespace haven-system --create-namespace \
    --set replicas=0 --set dataStore.hostPath="$data_root" --wait
  kubectl wait --for=condition=Established --timeout=60s \
    crd/datapermits.haven.io crd/workspaces.haven.io crd/airlockrequests.haven.io
  helm list -n haven-system
  cargo build --quiet --locked -p haven
  haven="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/haven"
  operator_kubeconfig="$(dirname "$KUBECONFIG")/haven-operator.kubeconfig"
  e2e/sa-kubeconfig.sh haven haven-system "$operator_kubeconfig"
fi

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

if [ "$real_node" = 1 ]; then
  say "A real analysis environment: JupyterLab from PyPI, as an image built here (first run ~1 min)"
  read -r jupyterlab jupyterlab_archive < <(images/jupyterlab.sh)
  e2e/node.sh load-image "$jupyterlab_archive" "$jupyterlab"

  say "Installing Haven with its Helm chart; the operator runs from its image on the real node"
  # The chart's defaults (non-root, read-only root filesystem, probes, leader election); the
  # image is already in the node's containerd, and the data store is a directory of the node.
  # The access gateway too: its TLS certificate, OIDC client Secret and NodePort 30443.
  mkdir -p "$data_root/audit"
  chown -R 65532:65532 "$data_root"
  gateway_values="$(HAVEN_CLUSTER_DIR="$(dirname "$KUBECONFIG")" e2e/gateway-values.sh)"
  helm upgrade --install haven charts/haven --namespace haven-system --create-namespace \
    --set image.pullPolicy=Never --set dataStore.hostPath="$data_root" -f "$gateway_values" --wait --timeout 180s
  helm list -n haven-system
  kubectl -n haven-system get pods -o wide
  kubectl -n haven-system get lease haven-operator -o jsonpath='{"Lease held by "}{.spec.holderIdentity}{"\n"}'
else
  say "Starting the operator as the chart's ServiceAccount (data store: $data_root; log: $data_root.log)"
  # The tier profiles from the chart's ConfigMap, as the chart's Deployment passes them.
  KUBECONFIG="$operator_kubeconfig" "$haven" run --data-root "$data_root" --tier-config-map haven-tiers \
    >"$data_root.log" 2>&1 &
  operator=$!
  trap 'kill "$operator" 2>/dev/null || true' EXIT
fi

say "Applying examples/"
examples examples/datapermit.yaml | kubectl apply -f -
examples examples/datapermit-minimal.yaml | kubectl apply -f -
kubectl wait --for=jsonpath='{.status.phase}'=Active --timeout=120s datapermit/cancer-outcomes-2026 datapermit/minimal-permit
say "Prepared extract of cancer-registry (first rows) and its report's summary"
head -3 "$data_root/extracts/cancer-outcomes-2026/cancer-registry/data.csv"
kubectl get datapermit cancer-outcomes-2026 -o jsonpath='{.status.datasets}'; echo
examples examples/workspace.yaml | kubectl apply -f -
examples examples/workspace-minimal.yaml | kubectl apply -f -
kubectl wait --for=jsonpath='{.status.phase}'=Ready --timeout=120s workspace/cancer-outcomes workspace/minimal

say "kubectl get datapermits,workspaces"
kubectl get datapermits,workspaces
say "The controls in force for cancer-outcomes-2026 (its tier 3, tightened by the permit)"
kubectl get datapermit cancer-outcomes-2026 -o jsonpath='{.status.controls}'; echo
say "What workspace cancer-outcomes became (namespace ws-cancer-outcomes)"
kubectl get networkpolicies,roles,rolebindings,resourcequotas,limitranges,pvc,statefulsets,services,pods -n ws-cancer-outcomes
kubectl get namespace ws-cancer-outcomes --show-labels

if [ "$real_node" = 1 ]; then
  say "The walls, by packets: the gateway namespace reaches the IDE, any other namespace is refused"
  for ns in haven-gateway demo-elsewhere; do
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
    kubectl -n "$ns" run probe --image="haven.local/testenv:$version" --restart=Never \
      --overrides='{"spec":{"automountServiceAccountToken":false,"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"probe","image":"haven.local/testenv:'"$version"'","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}' >/dev/null 2>&1 || true
    kubectl -n "$ns" wait --for=condition=Ready pod/probe --timeout=120s >/dev/null
  done
  ide="$(kubectl -n ws-cancer-outcomes get service workspace -o jsonpath='{.spec.clusterIP}'):8888"
  # JupyterLab answers / with a redirect to /lab.
  echo "  from haven-gateway:  $(kubectl -n haven-gateway exec probe -- /haven-testenv get "$ide" 2>/dev/null || true)"
  echo "  from demo-elsewhere: $(kubectl -n demo-elsewhere exec probe -- /haven-testenv get "$ide" 2>/dev/null || true)"
  echo "  the environment to the API server: $(kubectl -n ws-minimal exec workspace-0 -- /haven-testenv connect 10.96.0.1:443 2>/dev/null || true)"
  kubectl -n ws-cancer-outcomes logs workspace-0 --tail=3 | sed 's/^/  jupyterlab: /' || true
fi

if [ "$real_node" = 1 ]; then
  say "The door: people reach a workspace only through the access gateway (OIDC login, MFA per tier, a check per visit)"
  # The provider's people (e2e/idp.sh): ada has a password and a one-time code, ben a password only,
  # oli is an output checker. A tier-3 permit for ada and ben, and a workspace running JupyterLab.
  sed -e "s#quay.io/jupyter/minimal-notebook:2026-01-05#$jupyterlab#" \
    -e 's#name: minimal-permit#name: door-permit#' -e 's#permitId: .*#permitId: HDAB-2026-DOOR#' \
    -e 's#users: \[erin@example.org\]#users: [ada@haven.test, ben@haven.test]#' \
    -e 's#reviewers: \[frank@example.org\]#reviewers: [oli@haven.test]#' examples/datapermit-minimal.yaml | kubectl apply -f -
  kubectl wait --for=jsonpath='{.status.phase}'=Active --timeout=120s datapermit/door-permit
  kubectl apply -f - <<YAML
apiVersion: haven.io/v1alpha1
kind: Workspace
metadata: { name: door }
spec: { permit: door-permit, users: [ada@haven.test, ben@haven.test], image: "$jupyterlab", resources: { cpu: 250m, memory: 512Mi } }
YAML
  kubectl wait --for=jsonpath='{.status.phase}'=Ready --timeout=300s workspace/door
  # shellcheck disable=SC1091  # written by e2e/idp.sh
  source "$(dirname "$KUBECONFIG")/idp.env"
  node_ip="$(kubectl get nodes -o jsonpath="{.items[0].status.addresses[?(@.type=='InternalIP')].address}")"
  echo "  https://door.haven.test:30443/  (haven.test and *.haven.test at $node_ip; CA $IDP_CA_FILE)"
  echo "  log in as $IDP_ADA_EMAIL, password $IDP_ADA_PASSWORD, one-time codes from the TOTP key $IDP_ADA_TOTP_SECRET"
  export HAVEN_IDP_ENV="$(dirname "$KUBECONFIG")/idp.env"
  e2e/build-browser.sh
  # A real browser: Keycloak's login pages, the one-time code, then JupyterLab through the door.
  cargo run --quiet --locked -p haven-e2e-nodes --example browser_visit -- ada door "$data_root/door-ada.png" /api/events/subscribe || true
  cargo run --quiet --locked -p haven-e2e-nodes --example browser_visit -- oli door "$data_root/door-oli.png" || true
  cargo run --quiet --locked -p haven-e2e-nodes --example gateway_visit -- ben door /lab || true
  say "Who was inside workspace door, and who was turned away (kubectl haven access, from the gateway's chained log)"
  cargo run --quiet --locked -p kubectl-haven -- access door --log "$data_root" --refusals
fi

say "Airlock: alice's notebook writes two outputs to /home/outputs"
outbox="$data_root/workspaces/cancer-outcomes/home/outputs"
mkdir -p "$outbox/tables" "$outbox/figures" "$data_root/workspaces/minimal/home/outputs"
printf 'stage,count\nI,412\nII,356\nIII,198\nIV,87\nunknown,6\n' > "$outbox/tables/survival-by-stage.csv"
printf '\211PNG\r\n\032\n(a Kaplan-Meier curve)' > "$outbox/figures/kaplan-meier.png"
printf 'region,count\nNorth,120\nSouth,95\n' > "$data_root/workspaces/minimal/home/outputs/summary.csv"
cat "$outbox/tables/survival-by-stage.csv"

# Requests are records and are never deleted: a demo run again on the same cluster submits a
# new request (survival-tables-2, -3, ...) beside the earlier ones.
ns=ws-cancer-outcomes
req=survival-tables
n=1
while kubectl get ar "$req" -n "$ns" >/dev/null 2>&1; do n=$((n + 1)); req="survival-tables-$n"; done
say "alice submits examples/airlockrequest-export.yaml as $req (as herself: requestedBy must be her)"
sed "s/^  name: survival-tables$/  name: $req/" examples/airlockrequest-export.yaml | kubectl apply -f - --as alice@uhru.example
kubectl apply -f examples/airlockrequest-export-minimal.yaml --as erin@example.org
kubectl wait --for=jsonpath='{.status.phase}'=AwaitingReview --timeout=120s -n "$ns" "ar/$req"
kubectl get airlockrequests -A

say "What alice reads of her request: each check's outcome, nothing of her file"
kubectl get ar "$req" -n "$ns" -o jsonpath='{range .status.files[*]}{.path}{"\n"}{range .checks[*]}{"    "}{.outcome}{"  "}{.check}{": "}{.detail}{"\n"}{end}{end}'

say "The check report the output checker reads (ConfigMap airlock-report-<uid>, carol only)"
uid=$(kubectl get ar "$req" -n "$ns" -o jsonpath='{.metadata.uid}')
kubectl get configmap "airlock-report-$uid" -n "$ns" --as carol@hdab.example -o jsonpath='{.data.report\.json}' >"$data_root.report.json"
python3 - "$data_root.report.json" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1])):
    print(f"{f['path']}  {f['size']} bytes  sha256 {f['sha256'][:16]}...")
    for c in f["checks"]:
        print(f"    {c['outcome']:<7} {c['check']:<20} {c.get('detail', '')}")
PY
echo "(ACRO-shaped report: $data_root/quarantine/$ns/$req/results.json)"

say "alice cannot approve her own request (admission says no)"
kubectl patch ar "$req" -n "$ns" --as alice@uhru.example --type merge \
  -p '{"spec":{"reviews":[{"reviewer":"alice@uhru.example","decision":"Approve"}]}}' 2>&1 | sed 's/^/  /' || true

say "carol, an output checker of the permit, approves, accepting the small 'unknown' cell as an exception"
kubectl patch ar "$req" -n "$ns" --as carol@hdab.example --type merge \
  -p '{"spec":{"reviews":[{"reviewer":"carol@hdab.example","decision":"Approve","comment":"unknown stage (6) is not disclosive: no individual can be singled out"}]}}'
kubectl get ar "$req" -n "$ns"   # the permit requires two approvals: 1/2
say "dave, the second output checker, approves too"
kubectl patch ar "$req" -n "$ns" --as dave@hdab.example --type merge \
  -p '{"spec":{"reviews":[{"reviewer":"carol@hdab.example","decision":"Approve","comment":"unknown stage (6) is not disclosive: no individual can be singled out"},{"reviewer":"dave@hdab.example","decision":"Approve"}]}}'
kubectl wait --for=jsonpath='{.status.phase}'=Exported --timeout=120s -n "$ns" "ar/$req"
kubectl get ar "$req" -n "$ns"
kubectl get ar "$req" -n "$ns" -o jsonpath='{.status.delivery}'; echo
(cd "$data_root/egress/cancer-outcomes-2026/$ns/$req" && find . -type f | sort && sha256sum MANIFEST.json)

say "Rejected manifests: validUntil before validFrom; a tier-3 permit asking for the internet"
kubectl apply -f e2e/invalid/permit-ends-before-start.yaml 2>&1 | sed 's/^/  /' || true
kubectl apply -f e2e/invalid/permit-tier-egress-too-open.yaml 2>&1 | sed 's/^/  /' || true

if [ "$real_node" = 1 ]; then
  say "Compute-to-data across two sites: two more Havens (hub and north, each its own control plane, real node, CA and data store; torn down after)"
  # ada's count runs beside each site's own survey; each site's own checker approves; only the
  # approved counts reach her workspace at the hub, where she pools them (docs/federation.md).
  env -u KUBECONFIG HAVEN_FED_SITE_NAMES="hub north" \
    e2e/run-federation.sh cargo run --quiet --locked -p haven-e2e-federation --example pooled_estimate
fi

if [ "$real_node" = 1 ]; then
  say "Done; the operator keeps running in its pod, the cluster keeps running"
else
  say "Done; the operator stops now, the cluster keeps running"
fi
if [ -n "${started_here:-}" ]; then
  echo "  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH"
  [ "$real_node" = 1 ] ||
    echo "  KUBECONFIG=$operator_kubeconfig $haven run --data-root $data_root --tier-config-map haven-tiers   # to run the operator again"
  echo "  make cluster-down                    # to stop the cluster"
fi
