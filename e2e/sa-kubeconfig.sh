#!/usr/bin/env bash
# Writes a kubeconfig that acts as a ServiceAccount (a token from `kubectl create token`),
# for the cluster of the current KUBECONFIG. The demo and the e2e tests run the operator
# with the Helm chart's ServiceAccount this way, so it has exactly the chart's RBAC.
# Usage: e2e/sa-kubeconfig.sh SERVICE_ACCOUNT NAMESPACE OUT_FILE
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
sa="$1" namespace="$2" out="$3"
cluster_field() { kubectl config view --minify --flatten -o jsonpath="{.clusters[0].cluster.$1}"; }
server=$(cluster_field server)
ca=$(cluster_field certificate-authority-data)
token=$(kubectl create token "$sa" -n "$namespace" --duration=2h)
umask 077
cat >"$out" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
  - name: $sa
    user: {token: "$token"}
contexts:
  - name: $sa
    context: {cluster: cluster, user: $sa}
current-context: $sa
YAML
