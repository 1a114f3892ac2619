#!/usr/bin/env bash
# The federation tier: three Haven sites side by side, each its own control plane with its own
# CA and data store (e2e/federation-site.sh): `hub` (the requesting site, also holding data)
# and `north` with a real node each, `south` with kwok only. Certificates from each site's own
# CA (e2e/federation-certs.sh), the Site objects and credential Secrets that join them, then the
# tests of e2e/federation, which start `haven run` and `haven federation` per site themselves.
# Always torn down, then the host is compared with how it was found. Where a real node cannot
# run (not root, no network namespaces), the tier says so loudly and is skipped;
# HAVEN_REQUIRE_REAL_NODE=1 (CI) makes that a failure.
#
# The tests read .fed-hub/federation.env: HAVEN_FED_SITES, HAVEN_FED_HUB_PORT/_CERT/_KEY (the
# hub's listener), and per site HAVEN_FED_<SITE>_KUBECONFIG, _DATA (its data store), _CA (its
# cluster CA, which issued its federation certificates), _CLIENT_CERT and _CLIENT_KEY.
#
# Usage: e2e/run-federation.sh [COMMAND...]   runs COMMAND (e.g. the demo's example) with that
# environment instead of the tests. HAVEN_FED_KEEP=1 leaves the sites up afterwards (no
# teardown, no host comparison; `source .fed-hub/federation.env` and run tests again; stop them
# with `for s in south north hub; do HAVEN_CLUSTER_DIR=.fed-$s e2e/cluster.sh down; done`).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[federation] $*" >&2; }

skip() {
  say "================================================================"
  say "SKIPPED: the federation tier did not run: $*"
  say "Compute-to-data across sites (pull, run beside the data, airlock, return) is UNTESTED."
  say "================================================================"
  [ "${HAVEN_REQUIRE_REAL_NODE:-0}" = 1 ] && exit 1
  exit 0
}
[ "$(id -u)" = 0 ] || skip "it needs root (network namespaces, cgroups, mounts)"
unshare --net true 2>/dev/null || skip "network namespaces cannot be created here"

bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"
# HAVEN_FED_SITE_NAMES: the demo's two sites ("hub north"); the tests take all three.
# HAVEN_FED_KWOK_SITES: sites on kwok alone (default south; the benchmark gives each a real node).
read -ra sites <<<"${HAVEN_FED_SITE_NAMES:-hub north south}"
declare -A rows=([hub]=120 [north]=200 [south]=80)
state_dir() { echo "$PWD/.fed-$1"; }
env_file="$(state_dir hub)/federation.env"

# Real nodes change the host; another tier's real node coming or going inside this tier's
# before/after window would show up in its comparison (and this tier's in the other's). The
# tiers that compare the host (run-nodes.sh too) hold this lock for their whole window; what
# they start long-lived gets `8>&-`, so no daemon keeps it after the tier.
exec 8>"${TMPDIR:-/tmp}/haven-host-window.lock"
flock -n 8 || { say "waiting for another real-node tier to finish (host-window lock)"; flock 8; }

before="$(mktemp)"; after="$(mktemp)"
e2e/host-state.sh >"$before"
finish() {
  local rc=$? t0=$SECONDS site pidfile pid
  if [ "${HAVEN_FED_KEEP:-0}" = 1 ]; then
    say "HAVEN_FED_KEEP=1: the sites stay up (.fed-hub/federation.env); nothing compared"
    exit "$rc"
  fi
  # Processes the tests started and could not stop (the test binary killed): only ours, by
  # the pid files e2e/federation/src/lib.rs writes, and only while they still name the site.
  for pidfile in "$PWD"/.fed-*/*.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(dirname "$pidfile")/"; then
      say "stopping $(basename "$pidfile" .pid) (pid $pid), left running by the tests"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # One after the other, the last one up first: a real node's teardown restores the host's
  # settings when it is the last, under cluster.sh's own lock.
  for ((i = ${#sites[@]} - 1; i >= 0; i--)); do
    HAVEN_CLUSTER_DIR="$(state_dir "${sites[i]}")" e2e/cluster.sh down || rc=1
  done
  say "teardown took $((SECONDS - t0))s"
  e2e/host-state.sh >"$after"
  if ! diff -u "$before" "$after" >&2; then
    say "FAILED: the host differs from how the tier found it (above)"
    rc=1
  else
    say "host state after teardown: as found (network namespaces, links, rules, ipsets, mounts, cgroups, sysctls)"
  fi
  rm -f "$before" "$after"
  exit "$rc"
}
trap finish EXIT

# One site after the other: each real node's start claims the host under cluster.sh's lock.
t0=$SECONDS
declare -A kubeconfig
for site in "${sites[@]}"; do
  if [[ " ${HAVEN_FED_KWOK_SITES-south} " == *" $site "* ]]; then real=0 kwok=1; else real=1 kwok=0; fi
  kubeconfig[$site]=$(HAVEN_CLUSTER_DIR="$(state_dir "$site")" HAVEN_REAL_NODE=$real HAVEN_KWOK_NODES=$kwok \
    HAVEN_IDP=0 e2e/federation-site.sh "$site" "${rows[$site]}" 8>&-)
done

# The hub's listener: a free loopback port below the ephemeral range, entered in cluster.sh's
# port registry as the hub cluster's, so no control plane started later is given it.
hub_state="$(state_dir hub)"
hub_port=$(python3 - "${TMPDIR:-/tmp}/haven-cluster-ports" "$hub_state" <<'PY'
import fcntl, os, random, socket, sys
registry, state = sys.argv[1], sys.argv[2]
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    hi = int(f.read().split()[0]) - 1
fd = os.open(registry + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
try:
    with open(registry) as f:
        taken = {int(line.split()[0]) for line in f if line.strip()}
except FileNotFoundError:
    taken = set()
for _ in range(5000):
    port = random.randint(20000, hi)
    if port in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    # cluster.sh keeps a registry entry while the owner's ports.env lists the port.
    with open(os.path.join(state, "ports.env"), "a") as f:
        f.write("FEDERATION_PORT=%d\n" % port)
    with open(registry, "a") as f:
        f.write("%d %s\n" % (port, state))
    print(port)
    break
else:
    sys.exit("no free port for the hub's listener")
PY
)

# Certificates, each signed by its own site's CA; the hub's server certificate for 127.0.0.1.
for site in "${sites[@]}"; do
  if [ "$site" = hub ]; then e2e/federation-certs.sh "$(state_dir "$site")" "$site" 127.0.0.1 >/dev/null
  else e2e/federation-certs.sh "$(state_dir "$site")" "$site" >/dev/null; fi
done

# site_object NAME CA_FILE [ENDPOINT]: a Site; with an endpoint, this site pulls from it and
# proves who it is there with the Secret federation-hub.
site_object() {
  python3 - "$@" <<'PY'
import json, sys
name, ca = sys.argv[1], open(sys.argv[2]).read()
spec = {"caBundle": ca}
if len(sys.argv) > 3:
    spec.update(endpoint=sys.argv[3], credentialSecret="federation-hub")
print(json.dumps({"apiVersion": "haven.io/v1alpha1", "kind": "Site", "metadata": {"name": name}, "spec": spec}))
PY
}
hub_endpoint="https://127.0.0.1:$hub_port"
for site in "${sites[@]}"; do
  state="$(state_dir "$site")"
  export KUBECONFIG="${kubeconfig[$site]}"
  kubectl -n haven-system create secret tls federation-hub --cert="$state/federation/client.crt" \
    --key="$state/federation/client.key" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # Every site (the hub too: it holds data) pulls from the hub; the hub knows each data site's CA.
  site_object hub "$hub_state/certs/ca.crt" "$hub_endpoint" | kubectl apply -f - >/dev/null
  if [ "$site" = hub ]; then
    for peer in "${sites[@]:1}"; do site_object "$peer" "$(state_dir "$peer")/certs/ca.crt" | kubectl apply -f - >/dev/null; done
  fi
  say "$site: Sites $(kubectl get sites -o jsonpath='{range .items[*]}{.metadata.name}={.spec.endpoint} {end}')"
done
unset KUBECONFIG

{
  printf 'HAVEN_FED_SITES=%q\n' "${sites[*]}"
  printf 'HAVEN_FED_HUB_PORT=%q\n' "$hub_port"
  printf 'HAVEN_FED_HUB_CERT=%q\n' "$hub_state/federation/server.crt"
  printf 'HAVEN_FED_HUB_KEY=%q\n' "$hub_state/federation/server.key"
  for site in "${sites[@]}"; do
    state="$(state_dir "$site")" upper="${site^^}"
    printf 'HAVEN_FED_%s_KUBECONFIG=%q\n' "$upper" "${kubeconfig[$site]}"
    printf 'HAVEN_FED_%s_DATA=%q\n' "$upper" "$state/data"
    printf 'HAVEN_FED_%s_CA=%q\n' "$upper" "$state/certs/ca.crt"
    printf 'HAVEN_FED_%s_CLIENT_CERT=%q\n' "$upper" "$state/federation/client.crt"
    printf 'HAVEN_FED_%s_CLIENT_KEY=%q\n' "$upper" "$state/federation/client.key"
  done
} >"$env_file"
say "${#sites[@]} sites up in $((SECONDS - t0))s; the hub listens at $hub_endpoint; $env_file"

cargo build --locked -p haven
HAVEN_BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/haven"
export HAVEN_BIN
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
export HAVEN_TESTENV_IMAGE="haven.local/testenv:$version"
set -a
# shellcheck source=/dev/null  # written above
source "$env_file"
set +a
if [ $# -gt 0 ]; then
  "$@" 8>&-
else
  cargo test --locked --no-fail-fast -p haven-e2e-federation -- --nocapture 8>&-
fi
