#!/usr/bin/env bash
# The access gateway against a direct connection to the same environment and against nginx
# doing the same job (TLS, reverse proxy, WebSocket upgrade; no login or per-visit check), side
# by side in one run on a real node (root; brings up its own cluster in .bench-nodes-cluster
# with the OpenID provider and the gateway, and tears it down):
#   gateway  https://gwbench.haven.test:30443/  logged in as ada (Keycloak, one-time code)
#   nginx    https://<node>:31443/              nginx in the node's network namespace
#   direct   http://<pod>:8888/                 from the node's network namespace
# Each: REQUESTS small GETs one at a time (p50, p99), the same spread over CONNECTIONS clients
# (requests/s), and 1,000 WebSocket echoes (round trip p50, p99). Then the gateway's memory.
# Usage: bench/gateway.sh [REQUESTS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-3000}"
connections="${2:-8}"
bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH" HAVEN_CLUSTER_DIR="$PWD/.bench-nodes-cluster"
command -v nginx >/dev/null || { apt-get update && apt-get install -y nginx-light; } >&2
nginx_pid=""
cleanup() {
  # nginx writes its own pid (the one started under node.sh exec is a child of a shell).
  [ -f "$HAVEN_CLUSTER_DIR/nginx.pid" ] && kill "$(cat "$HAVEN_CLUSTER_DIR/nginx.pid")" 2>/dev/null
  [ -n "$nginx_pid" ] && wait "$nginx_pid" 2>/dev/null
  e2e/cluster.sh down >/dev/null 2>&1
}
trap cleanup EXIT
KUBECONFIG=$(e2e/nodes-cluster.sh)
export KUBECONFIG HAVEN_IDP_ENV="$HAVEN_CLUSTER_DIR/idp.env"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
image="haven.local/testenv:$version"

kubectl apply -f - >/dev/null <<YAML
apiVersion: haven.io/v1alpha1
kind: DataPermit
metadata: { name: gwbench }
spec:
  permitId: BENCH-GATEWAY
  holder: { organisation: Bench, principalInvestigator: pi@example.org }
  purpose: Statistics
  users: [ada@haven.test]
  reviewers: [oli@haven.test]
  validFrom: "2026-01-01T00:00:00Z"
  validUntil: "2030-01-01T00:00:00Z"
  datasets:
    - name: survey
      source: survey/2025.csv
      columns: [{ name: respondent_id, rule: Hmac }, { name: region, rule: Keep }, { name: answer, rule: Keep }]
  environment: { allowedImages: ["$image"] }
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Active --timeout=180s datapermit/gwbench >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: haven.io/v1alpha1
kind: Workspace
metadata: { name: gwbench }
spec: { permit: gwbench, users: [ada@haven.test], image: "$image", resources: { cpu: 500m, memory: 256Mi } }
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Ready --timeout=180s workspace/gwbench >/dev/null
pod_ip="$(kubectl -n ws-gwbench get pod workspace-0 -o jsonpath='{.status.podIP}')"
eval "$(e2e/node.sh env)"

# nginx in the node's namespace with the gateway's certificate, proxying to the same pod.
conf="$HAVEN_CLUSTER_DIR/nginx.conf"
cat >"$conf" <<NGINX
worker_processes 1;
pid $HAVEN_CLUSTER_DIR/nginx.pid;
error_log $HAVEN_CLUSTER_DIR/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream env { server $pod_ip:8888; keepalive 32; }
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  server {
    listen $NODE_IP:31443 ssl;
    ssl_certificate $HAVEN_CLUSTER_DIR/gateway/tls.crt;
    ssl_certificate_key $HAVEN_CLUSTER_DIR/gateway/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://env;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$host;
    }
  }
}
NGINX
e2e/node.sh exec nginx -c "$conf" -g 'daemon off;' &
nginx_pid=$!
sleep 1

cargo build --quiet --locked -p haven-e2e-nodes --example gateway_bench
bench="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/gateway_bench"
gateway_rss() { ps -C haven -o rss=,args= | awk '/ gateway /{print $1}' | head -1; }
echo "gateway RSS before: $(gateway_rss) KiB"
"$bench" gateway "https://gwbench.haven.test:30443/" "$requests" "$connections"
"$bench" plain "https://$NODE_IP:31443/" "$requests" "$connections" nginx
e2e/node.sh exec "$bench" plain "http://$pod_ip:8888/" "$requests" "$connections" direct
echo "gateway RSS after:  $(gateway_rss) KiB"
