#!/usr/bin/env bash
# The access gateway's namespace and Secrets for a local cluster with its OpenID provider
# (e2e/idp.sh): a TLS certificate for haven.test, *.haven.test and the TES API's Service name,
# signed by the cluster's CA, the OIDC client's secret, the CA as a ConfigMap; then a Helm
# values file that turns the gateway on (NodePort HAVEN_GATEWAY_NODE_PORT, default 30443, on
# the real node's address).
# Prints the values file's path, for `helm upgrade --install ... -f <path>`.
# Needs KUBECONFIG and HAVEN_CLUSTER_DIR (its certs/ and idp.env).
set -euo pipefail
: "${HAVEN_CLUSTER_DIR:?set HAVEN_CLUSTER_DIR}"
state="$HAVEN_CLUSTER_DIR"
namespace=haven-gateway
domain=haven.test
node_port="${HAVEN_GATEWAY_NODE_PORT:-30443}"
dir="$state/gateway"
mkdir -p "$dir"
# shellcheck disable=SC1091  # written by e2e/idp.sh
source "$state/idp.env"

if [ ! -f "$dir/tls.crt" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/tls.key" 2>/dev/null
  openssl req -new -key "$dir/tls.key" -subj "/CN=$domain" -out "$dir/tls.csr"
  # The TES API's in-cluster name too: workspaces reach it there (gateway.tes).
  printf 'subjectAltName=DNS:%s,DNS:*.%s,DNS:haven-gateway-tes.%s.svc\nextendedKeyUsage=serverAuth\n' \
    "$domain" "$domain" "$namespace" >"$dir/tls.ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$state/certs/ca.crt" -CAkey "$state/certs/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$dir/tls.ext" \
    -out "$dir/tls.crt" 2>/dev/null
fi

# The namespace is ours (not the chart's) so that its Secrets exist before the gateway starts.
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$namespace" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
kubectl -n "$namespace" create secret tls haven-gateway-tls --cert="$dir/tls.crt" --key="$dir/tls.key" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$namespace" create secret generic haven-gateway-oidc --from-literal=client-secret="$IDP_CLIENT_SECRET" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$namespace" create configmap haven-gateway-ca --from-file=ca.crt="$IDP_CA_FILE" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null

cat >"$dir/values.yaml" <<VALUES
gateway:
  publicUrl: https://$domain:$node_port
  createNamespace: false
  tls: {secretName: haven-gateway-tls}
  oidc:
    issuerUrl: $IDP_ISSUER_URL
    clientId: $IDP_CLIENT_ID
    clientSecret: {name: haven-gateway-oidc, key: client-secret}
    caConfigMap: {name: haven-gateway-ca, key: ca.crt}
  service: {type: NodePort, nodePort: $node_port}
VALUES
echo "$dir/values.yaml"
