#!/usr/bin/env bash
# A real, local Kubernetes control plane on 127.0.0.1 with no container engine:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler, and kwok
# simulating fake nodes (pods scheduled there reach Running without a kubelet).
#
# Usage: e2e/cluster.sh up|down|status|env|restart-apiserver|user-kubeconfig NAME [GROUP...]
#   up               start the cluster (no-op if already healthy); prints the admin kubeconfig path
#   down             kill every component, remove the etcd data dir and the state dir
#   status           exit 0 if the apiserver answers /readyz
#   env              prints `export KUBECONFIG=...` and `export PATH=...` (use: eval "$(e2e/cluster.sh env)")
#   restart-apiserver
#                    SIGKILLs kube-apiserver, as a crash would, and starts it again with the same
#                    arguments (for resilience tests); returns once it answers /readyz
#   user-kubeconfig NAME [GROUP...]
#                    mints a client cert CN=NAME, O=GROUP... signed by the cluster CA and prints
#                    the path of a kubeconfig for it (<state>/users/NAME.kubeconfig)
#
# Environment:
#   HAVEN_CLUSTER_DIR  state dir (default <repo>/.cluster); one cluster per state dir, ports
#                      are chosen dynamically so several can run at once
#   HAVEN_KWOK_NODES   number of fake nodes kwok-node-0..N-1 (default 1)
#   HAVEN_UP_TIMEOUT   seconds allowed for each readiness wait (default 60)
#   HAVEN_REAL_NODE    1: also start a real node (containerd, kubelet, kube-proxy, kube-router,
#                      CoreDNS) in a network namespace of its own; see e2e/node.sh. Needs root.
#   HAVEN_IDP          1: also start an OpenID provider (Keycloak, realm haven) on the host end of
#                      the real node's veth (127.0.0.1 without one), port HAVEN_IDP_PORT (8443);
#                      its URLs and fresh credentials in <state>/idp.env; see e2e/idp.sh
#
# State dir layout: certs/ (ca.crt, ca.key, ...), logs/<component>.log, pids/<component>.pid,
# ports.env, etcd-dir (path of the etcd data dir, on /dev/shm when present), kubeconfig (admin),
# <component>.kubeconfig, users/<name>.kubeconfig.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=e2e/versions.env
source "$here/versions.env"
repo="$(cd "$here/.." && pwd)"
state="${HAVEN_CLUSTER_DIR:-$repo/.cluster}"
# Absolute path: it is embedded in kubeconfigs and process command lines.
case "$state" in /*) ;; *) state="$PWD/$state" ;; esac
state="${state%/}"
certs="$state/certs"
logs="$state/logs"
pids="$state/pids"
admin_kubeconfig="$state/kubeconfig"
timeout_s="${HAVEN_UP_TIMEOUT:-60}"
kwok_nodes="${HAVEN_KWOK_NODES:-1}"
service_cidr="10.96.0.0/16"  # inside the chart default clusterRanges; room for a Service per workspace at 1,000 workspaces
service_ip="10.96.0.1"
kwok_pod_cidr="10.244.0.0/17"   # the real node's pods use 10.244.128.0/24
control_plane=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
node_components=(containerd kubelet kube-proxy kube-router)
components=("${control_plane[@]}")
real_node="${HAVEN_REAL_NODE:-0}"
# Registry of ports handed out to clusters on this machine (shared by all state dirs).
port_registry="${TMPDIR:-/tmp}/haven-cluster-ports"

say() { echo "[cluster] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

bin_dir() { "$here/build-control-plane.sh"; }

# shellcheck source=e2e/node.sh
source "$here/node.sh"
# A cluster that has a real node keeps it: `up` and `status` look at its processes too.
[ -f "$state/node/id" ] && real_node=1
[ "$real_node" = 1 ] && components+=("${node_components[@]}")
# shellcheck source=e2e/idp.sh
source "$here/idp.sh"
[ "$idp_enabled" = 1 ] && components+=(keycloak)

# ---------------------------------------------------------------- processes

# pgid_alive PID: the process group PID (our setsid'd component) still has members.
pgid_alive() { kill -0 -- "-$1" 2>/dev/null; }

# Prints the recorded pid of a component if its process group is ours and alive.
# A live leader must still carry our state dir or etcd dir in its command line
# (guards against pid reuse after a reboot); a dead leader whose group still
# exists is ours (Linux does not reuse a pid while it is a live pgid).
component_pid() {
  local f="$pids/$1.pid" pid marker_etcd=""
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  pgid_alive "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    [ -f "$state/etcd-dir" ] && marker_etcd="$(cat "$state/etcd-dir")"
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    if [[ "$cmd" != *"$state/"* ]] && { [ -z "$marker_etcd" ] || [[ "$cmd" != *"$marker_etcd"* ]]; }; then
      return 1
    fi
  fi
  echo "$pid"
}

# start NAME CMD...: runs CMD in its own session/process group, logs to logs/NAME.log.
start() {
  local name="$1"; shift
  # In a non-interactive shell a background job is never a group leader, so
  # setsid execs in place (no fork) and $! is the component's pid == pgid.
  setsid "$@" </dev/null >"$logs/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pids/$name.pid"
  started+=("$name")
  say "started $name (pid $pid)"
}

# stop_group NAME...: TERM to each component's process group, wait up to 10 s,
# then KILL whatever is left.
stop_group() {
  local name pid alive=() left deadline
  for name in "$@"; do
    if pid="$(component_pid "$name")"; then
      kill -TERM -- "-$pid" 2>/dev/null || true
      alive+=("$pid")
    fi
  done
  deadline=$((SECONDS + 10))
  while [ "${#alive[@]}" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
    left=()
    for pid in "${alive[@]}"; do pgid_alive "$pid" && left+=("$pid"); done
    alive=("${left[@]}")
    [ "${#alive[@]}" -gt 0 ] && sleep 0.1
  done
  for pid in "${alive[@]}"; do
    say "process group $pid ignored TERM for 10 s; sending KILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 5))
  for pid in "${alive[@]}"; do
    while pgid_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
}

# Clients first: kube-apiserver lingers ~30 s on TERM while they still hold watches.
stop_all() {
  idp_down
  node_down
  stop_group kwok kube-scheduler kube-controller-manager
  stop_group kube-apiserver
  stop_group etcd
}

# Stops everything and deletes the etcd data dir and the whole state dir.
teardown() {
  [ -d "$state" ] || return 0
  stop_all
  if [ -f "$state/etcd-dir" ]; then
    local d
    d="$(cat "$state/etcd-dir")"
    case "$d" in
      /dev/shm/haven-etcd.*|"$state"/*) rm -rf -- "$d" ;;
    esac
  fi
  rm -rf -- "$state"
}

# ---------------------------------------------------------------- ports

# Picks N free loopback ports below the ephemeral range (so outgoing connections
# cannot grab them), never handed to another live state dir: under a lock on a
# shared registry, entries whose state dir no longer lists them are dropped.
# Writes NAME=PORT lines to $state/ports.env while still holding the lock.
alloc_ports() {
  python3 - "$port_registry" "$state" "$@" <<'PY'
import fcntl, os, random, socket, sys
registry, state, names = sys.argv[1], sys.argv[2], sys.argv[3:]
n = len(names)
lo = 20000
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph_lo = int(f.read().split()[0])
except Exception:
    eph_lo = 32768
hi = eph_lo - 1 if eph_lo - 1 > lo + 1000 else 30999
fd = os.open(registry + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
def listed(port, owner):
    try:
        with open(os.path.join(owner, "ports.env")) as f:
            return any(l.strip().endswith("=%d" % port) for l in f)
    except OSError:
        return False
taken, keep = set(), []
try:
    with open(registry) as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) != 2:
                continue
            port, owner = int(parts[0]), parts[1].strip()
            # drop entries of this state dir (re-allocating) and of vanished clusters
            if owner != state and listed(port, owner):
                taken.add(port); keep.append((port, owner))
except FileNotFoundError:
    pass
def free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port)); return True
    except OSError:
        return False
    finally:
        s.close()
chosen = []
for _ in range(5000):
    if len(chosen) == n:
        break
    p = random.randint(lo, hi)
    if p in taken or p in chosen or not free(p):
        continue
    chosen.append(p)
if len(chosen) != n:
    sys.exit("could not find %d free ports" % n)
keep += [(p, state) for p in chosen]
tmp = registry + ".tmp.%d" % os.getpid()
with open(tmp, "w") as f:
    for p, o in keep:
        f.write("%d %s\n" % (p, o))
with open(os.path.join(state, "ports.env"), "w") as f:
    for name, p in zip(names, chosen):
        f.write("%s=%d\n" % (name, p))
os.replace(tmp, registry)
PY
}

# ---------------------------------------------------------------- certificates

# sign NAME SUBJ EXTENSIONS [DIR] [CA]: key + cert DIR/NAME.{key,crt} signed by
# certs/CA.{crt,key} (default: the cluster CA, certs/ca).
sign() {
  local name="$1" subj="$2" ext="$3" dir="${4:-$certs}" ca="${5:-ca}"
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
  chmod 600 "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$certs/$ca.crt" -CAkey "$certs/$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
    -extfile <(printf '%s\n' "$ext") -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr"
}

client_ext='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'

# new_ca NAME CN: self-signed CA certs/NAME.{crt,key}.
new_ca() {
  openssl ecparam -name prime256v1 -genkey -noout -out "$certs/$1.key" 2>/dev/null
  chmod 600 "$certs/$1.key"
  openssl req -x509 -new -key "$certs/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$certs/$1.crt"
}

gen_certs() {
  mkdir -p "$certs"
  new_ca ca haven-local-ca
  # Aggregation layer (requestheader auth), as kubeadm does: a separate CA.
  new_ca front-proxy-ca haven-front-proxy-ca
  sign front-proxy-client "/CN=front-proxy-client" "$client_ext" "$certs" front-proxy-ca
  sign kube-apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$service_ip${host_ip:+,IP:$host_ip},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=haven-admin" "$client_ext"
  # The API server's identity towards kubelets (logs, exec), as kubeadm's apiserver-kubelet-client.
  sign kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
  sign kube-controller-manager "/CN=system:kube-controller-manager" "$client_ext"
  sign kube-scheduler "/CN=system:kube-scheduler" "$client_ext"
  # Service-account token signing key pair.
  openssl ecparam -name prime256v1 -genkey -noout -out "$certs/sa.key" 2>/dev/null
  chmod 600 "$certs/sa.key"
  openssl ec -in "$certs/sa.key" -pubout -out "$certs/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER CERT KEY: kubeconfig with embedded CA and client cert.
write_kubeconfig() {
  local file="$1" user="$2" crt="$3" key="$4"
  (
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: haven
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$certs/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$crt")
    client-key-data: $(base64 -w0 <"$key")
contexts:
- name: haven
  context:
    cluster: haven
    user: $user
current-context: haven
EOF
  )
}

# ---------------------------------------------------------------- health

# shellcheck disable=SC1091  # generated at run time
load_ports() { [ -f "$state/ports.env" ] && source "$state/ports.env"; }

apiserver_ready() {
  [ -n "${APISERVER_PORT:-}" ] || return 1
  curl -fsS --max-time 3 --cacert "$certs/ca.crt" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1
}

# Healthy = the apiserver answers and every component is still running.
healthy() {
  load_ports || return 1
  local c
  for c in "${components[@]}"; do component_pid "$c" >/dev/null || return 1; done
  apiserver_ready
}

# wait_for DESC CMD...: polls CMD until it succeeds, a started component dies,
# or the deadline passes.
wait_for() {
  local desc="$1"; shift
  local deadline=$((SECONDS + timeout_s)) t0=$SECONDS c
  while :; do
    "$@" >/dev/null 2>&1 && { say "$desc ($((SECONDS - t0))s)"; return 0; }
    for c in "${started[@]}"; do
      component_pid "$c" >/dev/null || { failed="$c"; die "$c exited while waiting for: $desc"; }
    done
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${timeout_s}s waiting for: $desc"
    sleep 0.25
  done
}

etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
https_healthz() { curl -fsSk --max-time 2 "https://127.0.0.1:$1/healthz" | grep -qx ok; }
default_sa() { kubectl get serviceaccount default -n default; }
nodes_ready() {
  local i out
  for ((i = 0; i < kwok_nodes; i++)); do
    out="$(kubectl get node "kwok-node-$i" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.spec.taints}')"
    [ "$out" = "True " ] || return 1   # Ready and no taints left (not-ready taint removed)
  done
}

# ---------------------------------------------------------------- up

on_up_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] && return 0
  local c show="${failed:-}"
  if [ -z "$show" ]; then
    for c in "${started[@]}"; do component_pid "$c" >/dev/null || { show="$c"; break; }; done
  fi
  [ -z "$show" ] && [ "${#started[@]}" -gt 0 ] && show="${started[-1]}"
  if [ -n "$show" ] && [ -f "$logs/$show.log" ]; then
    say "last lines of $logs/$show.log:"
    tail -n 30 "$logs/$show.log" >&2 || true
  fi
  say "up failed; cleaning up"
  teardown
  exit "$rc"
}

cmd_up() {
  local t_start=$SECONDS bin
  bin="$(bin_dir)"
  export PATH="$bin:$PATH" KUBECONFIG="$admin_kubeconfig"
  command -v openssl >/dev/null || {
    say "installing openssl"
    { apt-get update && apt-get install -y openssl; } >&2
  }
  command -v python3 >/dev/null || die "python3 is required (free port selection)"
  command -v curl >/dev/null || die "curl is required (health checks)"

  if [ -d "$state" ]; then
    if healthy; then
      say "cluster in $state is already running and healthy"
      echo "$admin_kubeconfig"
      return 0
    fi
    say "removing stale state in $state"
    teardown
  fi

  started=()
  failed=""
  mkdir -p "$state" "$logs" "$pids"
  trap on_up_exit EXIT

  alloc_ports ETCD_CLIENT_PORT ETCD_PEER_PORT APISERVER_PORT CONTROLLER_MANAGER_PORT SCHEDULER_PORT KWOK_PORT \
    || die "port allocation failed"
  load_ports
  say "ports: etcd $ETCD_CLIENT_PORT/$ETCD_PEER_PORT, apiserver $APISERVER_PORT, controller-manager $CONTROLLER_MANAGER_PORT, scheduler $SCHEDULER_PORT, kwok $KWOK_PORT"

  local etcd_dir
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    etcd_dir="$(mktemp -d /dev/shm/haven-etcd.XXXXXXXX)"
  else
    etcd_dir="$state/etcd"
  fi
  echo "$etcd_dir" >"$state/etcd-dir"
  chmod 700 "$etcd_dir"

  start etcd etcd \
    --name=haven --data-dir="$etcd_dir/data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="haven=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new --initial-cluster-token="haven-$ETCD_CLIENT_PORT" \
    --unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn

  # A real node reaches the API server at the host end of its veth: the API server
  # advertises that address (the `kubernetes` Service's endpoint) and its certificate names it.
  local advertise=127.0.0.1
  if [ "$real_node" = 1 ]; then
    node_prepare || die "cannot start a real node (see above); unset HAVEN_REAL_NODE for a kwok-only cluster"
    advertise="$host_ip"
  fi

  gen_certs   # overlaps with etcd start-up
  write_kubeconfig "$admin_kubeconfig" haven-admin "$certs/admin.crt" "$certs/admin.key"
  write_kubeconfig "$state/kube-controller-manager.kubeconfig" system:kube-controller-manager \
    "$certs/kube-controller-manager.crt" "$certs/kube-controller-manager.key"
  write_kubeconfig "$state/kube-scheduler.kubeconfig" system:kube-scheduler \
    "$certs/kube-scheduler.crt" "$certs/kube-scheduler.key"
  say "certificates and kubeconfigs written"
  # Keycloak's Java start-up (10-20 s) overlaps the rest of `up`; idp_wait at the end.
  if [ "$idp_enabled" = 1 ]; then idp_start || die "cannot start the OpenID provider (see above)"; fi

  wait_for "etcd healthy" etcd_healthy

  start kube-apiserver kube-apiserver \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address=127.0.0.1 --advertise-address="$advertise" --secure-port="$APISERVER_PORT" \
    --kubelet-client-certificate="$certs/kubelet-client.crt" --kubelet-client-key="$certs/kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --tls-cert-file="$certs/kube-apiserver.crt" --tls-private-key-file="$certs/kube-apiserver.key" \
    --client-ca-file="$certs/ca.crt" \
    --requestheader-client-ca-file="$certs/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$certs/front-proxy-client.crt" \
    --proxy-client-key-file="$certs/front-proxy-client.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$certs/sa.pub" \
    --service-account-signing-key-file="$certs/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$service_cidr" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,ResourceQuota,PodSecurity,Priority,NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
    --allow-privileged=true \
    --profiling=false \
    --event-ttl=30m

  wait_for "kube-apiserver ready" apiserver_ready

  # The volume binder retries a bind that lost a race (a claim updated under it) only once per
  # sync period; the 15 s default left a pre-bound claim Pending past a short-lived workspace.
  # At the default 20 requests/s per controller, binding 3 volumes per workspace (four writes
  # each) paced the scale benchmark at about one workspace Ready per second.
  start kube-controller-manager kube-controller-manager \
    --kubeconfig="$state/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$state/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$state/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$certs/sa.key" \
    --root-ca-file="$certs/ca.crt" \
    --cluster-signing-cert-file="$certs/ca.crt" --cluster-signing-key-file="$certs/ca.key" \
    --service-cluster-ip-range="$service_cidr" \
    --controllers='*,-cloud-node-lifecycle-controller,-node-route-controller,-service-lb-controller,-node-ipam-controller' \
    --pvclaimbinder-sync-period=2s \
    --kube-api-qps=200 --kube-api-burst=400 \
    --profiling=false

  start kube-scheduler kube-scheduler \
    --kubeconfig="$state/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$state/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --leader-elect=false --kube-api-qps=200 --kube-api-burst=400 --profiling=false

  # kwok ships no built-in stages; e2e/kwok/stages.yaml holds v0.8.0's defaults.
  # KWOK_WORKDIR keeps it away from ~/.kwok/kwok.yaml.
  mkdir -p "$state/kwok"
  start kwok env KWOK_WORKDIR="$state/kwok" kwok \
    --kubeconfig="$admin_kubeconfig" \
    --config="$here/kwok/stages.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 \
    --node-ip=127.0.0.1 \
    --cidr="$kwok_pod_cidr" \
    --server-address="127.0.0.1:$KWOK_PORT"

  local i
  for ((i = 0; i < kwok_nodes; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
spec: {}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "500", ephemeral-storage: 1Ti}
  capacity: {cpu: "64", memory: 256Gi, pods: "500", ephemeral-storage: 1Ti}
EOF
  done >"$state/kwok-nodes.yaml"
  [ "$kwok_nodes" -eq 0 ] || kubectl apply -f "$state/kwok-nodes.yaml" >/dev/null
  say "created $kwok_nodes fake node(s)"

  wait_for "kube-scheduler healthy" https_healthz "$SCHEDULER_PORT"
  wait_for "kube-controller-manager healthy" https_healthz "$CONTROLLER_MANAGER_PORT"
  wait_for "default ServiceAccount exists" default_sa
  wait_for "fake node(s) Ready and untainted" nodes_ready
  [ "$real_node" = 1 ] && node_up
  if [ "$idp_enabled" = 1 ]; then idp_wait; fi

  trap - EXIT
  say "cluster up in $((SECONDS - t_start))s; eval \"\$($0 env)\" to use it"
  echo "$admin_kubeconfig"
}

# ---------------------------------------------------------------- other commands

cmd_down() {
  if [ ! -d "$state" ]; then
    say "no cluster state in $state"
    return 0
  fi
  teardown
  say "cluster in $state stopped and removed"
}

cmd_status() {
  if [ ! -f "$state/ports.env" ]; then
    say "no cluster in $state"
    return 1
  fi
  load_ports
  local c pid
  for c in "${components[@]}"; do
    if pid="$(component_pid "$c")"; then say "$c: running (pid $pid)"; else say "$c: not running"; fi
  done
  if apiserver_ready; then
    say "apiserver https://127.0.0.1:$APISERVER_PORT ready"
    return 0
  fi
  say "apiserver not answering"
  return 1
}

cmd_env() {
  local bin
  bin="$(bin_dir)"
  printf 'export KUBECONFIG=%q\n' "$admin_kubeconfig"
  # shellcheck disable=SC2016  # $PATH must expand at eval time
  printf 'export PATH=%q:"$PATH"\n' "$bin"
  if [ -f "$idp_env_file" ]; then printf 'export HAVEN_IDP_ENV=%q\n' "$idp_env_file"; fi
}

cmd_user_kubeconfig() {
  [ $# -ge 1 ] || die "usage: $0 user-kubeconfig NAME [GROUP...]"
  local name="$1"; shift
  [[ "$name" =~ ^[A-Za-z0-9._@:-]+$ ]] || die "invalid user name: $name"
  if [ ! -f "$certs/ca.key" ] || ! load_ports; then die "no cluster in $state (run: $0 up)"; fi
  local subj="" g
  for g in "$@"; do
    [[ "$g" =~ ^[A-Za-z0-9._@:-]+$ ]] || die "invalid group name: $g"
    subj+="/O=$g"
  done
  subj+="/CN=$name"
  local dir="$state/users"
  mkdir -p "$dir"
  sign "$name" "$subj" "$client_ext" "$dir"
  write_kubeconfig "$dir/$name.kubeconfig" "$name" "$dir/$name.crt" "$dir/$name.key"
  echo "$dir/$name.kubeconfig"
}

cmd_restart_apiserver() {
  load_ports || die "no cluster in $state"
  local pid args=()
  pid="$(component_pid kube-apiserver)" || die "kube-apiserver is not running"
  mapfile -d '' args <"/proc/$pid/cmdline"
  kill -KILL -- "-$pid" 2>/dev/null || true
  while pgid_alive "$pid"; do sleep 0.05; done
  say "kube-apiserver killed (pid $pid)"
  started=()
  start kube-apiserver "${args[@]}"
  wait_for "kube-apiserver ready" apiserver_ready
}

usage() {
  sed -n '6,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart-apiserver) cmd_restart_apiserver ;;
  env) cmd_env ;;
  user-kubeconfig) shift; cmd_user_kubeconfig "$@" ;;
  *) usage ;;
esac
