#!/usr/bin/env bash
# shellcheck disable=SC2154  # sourced by cluster.sh: certs, client_ext, sign, start, wait_for are its
# A real Kubernetes node beside the local control plane, living in a network namespace of
# its own so that several clusters, each with a real node, can share one machine:
#
#   host netns                         node netns haven-<id>                 outside netns haven-<id>-out
#   kube-apiserver 127.0.0.1:PORT      containerd, kubelet, kube-proxy,      stand-in internet 203.0.113.10
#   hv<id>h 10.250.x.1/30  <--veth-->  kube-router; eth0 10.250.x.2/30       metadata 169.254.169.254
#   (DNAT x.1:PORT -> 127.0.0.1:PORT)  bridge cni0 10.244.128.1/24 (pods) <-> package mirror 198.51.100.10
#
# The node netns has no default route: a pod's packet can reach only the pod bridge, the
# Service range, the API server's port (and the OpenID provider's, e2e/idp.sh) on the host
# veth and the outside stand-ins. A guard chain (raw table, before kube-proxy and
# kube-router see the packet) drops and counts anything else from the pod range;
# `guard-drops` prints that count and tests fail if it is not zero.
#
# Sourced by e2e/cluster.sh (node_prepare before the API server starts, node_up after it,
# node_down in teardown); run directly for the commands below.
#
# Usage: e2e/node.sh guard-drops|exec CMD...|outside CMD...|load-image TAR NAME|images|env
#   guard-drops   packets the guard dropped (must be 0)
#   exec CMD...   runs CMD in the node's network namespace (e.g. curl a pod IP)
#   outside CMD...  runs CMD in the outside stand-ins' network namespace
#   load-image TAR NAME  imports an image archive into the node's containerd as NAME
#   images        rebuilds Haven's images (images/build.sh, python-tes.sh) and imports them
#   env           prints the node's addresses as shell assignments
set -euo pipefail

node_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node_name=haven-node
node_pod_cidr="10.244.128.0/24"      # kwok hands out 10.244.0.0/17, so the two never meet
node_bridge_ip="10.244.128.1"
node_dns_ip="10.96.0.10"
outside_internet="203.0.113.10"      # TEST-NET-3: never routed on the internet
outside_metadata="169.254.169.254"
outside_mirror="198.51.100.10"       # TEST-NET-2
outside_ranges=("203.0.113.0/24" "169.254.169.254/32" "198.51.100.0/24")
outside_ports=(80 443 3128 8888)
gateway_port=8443                    # the gateway container's listener (charts/haven: --listen)
cni_bin=/usr/lib/cni
cgroup_root_name() { echo "haven-$node_id"; }

# Everything is derived from the API server's port, unique among this machine's clusters:
# the namespace names, the interfaces (15 characters at most) and a /30 in 10.250.0.0/16.
node_ids() {
  node_id="$APISERVER_PORT"
  node_netns="haven-$node_id"
  outside_netns="haven-$node_id-out"
  host_if="hv${node_id}h"
  outside_if="hv${node_id}o"
  local block=$(((APISERVER_PORT - 20000) * 4))
  host_ip="10.250.$((block / 256)).$((block % 256 + 1))"
  node_ip="10.250.$((block / 256)).$((block % 256 + 2))"
  node_dir="$state/node"
}

in_node() { nsenter --net="/run/netns/$node_netns" "$@"; }
in_outside() { nsenter --net="/run/netns/$outside_netns" "$@"; }
# start_in NETNS NAME CMD...: `start` (cluster.sh) inside a network namespace; nsenter execs
# CMD in place, so the recorded pid is CMD's.
start_in() { local netns="$1" name="$2"; shift 2; start "$name" nsenter --net="/run/netns/$netns" "$@"; }

node_bin_dir() { "$node_here/build-node.sh"; }

# ---------------------------------------------------------------- before the API server

# Checks the machine can host a real node and creates its namespaces and veths, so the API
# server can advertise the host end of the veth. Prints why not and fails otherwise.
node_prepare() {
  node_ids
  [ "$(id -u)" = 0 ] || { say "a real node needs root (network namespaces, cgroups, mounts)"; return 1; }
  if [ "$APISERVER_PORT" -lt 20000 ] || [ "$APISERVER_PORT" -ge 36384 ]; then
    say "API server port $APISERVER_PORT outside 20000-36383 (the node's addresses derive from it)"
    return 1
  fi
  command -v nsenter >/dev/null || { say "nsenter (util-linux) is required"; return 1; }
  NODE_BIN="$(node_bin_dir)"
  # Leftovers of a cluster that had this port and died without `down` (ports are unique
  # among live clusters, so these are nobody's).
  ip netns del "$node_netns" 2>/dev/null || true
  ip netns del "$outside_netns" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
  mkdir -p "$node_dir"
  echo "$node_id" >"$node_dir/id"
  host_claim
  ip netns add "$node_netns"
  ip netns add "$outside_netns"
  ip link add "$host_if" type veth peer name eth0 netns "$node_netns"
  ip addr add "$host_ip/30" dev "$host_if"
  ip link set "$host_if" up
  # The API server listens on loopback; the node reaches it at the host end of its veth.
  sysctl -qw "net.ipv4.conf.$host_if.route_localnet=1"
  iptables -t nat -A PREROUTING -i "$host_if" -d "$host_ip" -p tcp --dport "$APISERVER_PORT" \
    -m comment --comment "haven node $node_id: API server" -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
  in_node ip addr add "$node_ip/30" dev eth0
  in_node ip link set lo up
  in_node ip link set eth0 up
  in_node sysctl -qw net.ipv4.ip_forward=1
  # Pods reach the API server with the node's address, so the host needs no route to pods.
  in_node iptables -t nat -A POSTROUTING -s "$node_pod_cidr" -o eth0 -j MASQUERADE
  prepare_outside
  install_guard
}

# The stand-ins a test probes as "the internet", "the cloud metadata service" and "the
# package mirror": addresses in a namespace of our own, reached from the node over a veth.
prepare_outside() {
  ip link add "$outside_if" netns "$node_netns" type veth peer name eth0 netns "$outside_netns"
  in_node ip addr add 10.251.0.1/30 dev "$outside_if"
  in_node ip link set "$outside_if" up
  in_outside ip link set lo up
  in_outside ip addr add 10.251.0.2/30 dev eth0
  in_outside ip link set eth0 up
  local a
  for a in "$outside_internet" "$outside_metadata" "$outside_mirror"; do in_outside ip addr add "$a/32" dev lo; done
  for a in "${outside_ranges[@]}"; do in_node ip route add "$a" via 10.251.0.2 dev "$outside_if"; done
  in_outside ip route add "$node_pod_cidr" via 10.251.0.1 dev eth0
}

# Drops (and counts) any packet from the pod range bound for anywhere but the places above.
# In the raw table, so kube-proxy's and kube-router's ACCEPTs in filter cannot skip it.
install_guard() {
  local nat_ranges=("$node_pod_cidr" "$service_cidr" "${outside_ranges[@]}")
  in_node iptables -t raw -N HAVEN-GUARD
  local r
  for r in "${nat_ranges[@]}"; do in_node iptables -t raw -A HAVEN-GUARD -d "$r" -j RETURN; done
  in_node iptables -t raw -A HAVEN-GUARD -d "$host_ip" -p tcp --dport "$APISERVER_PORT" -j RETURN
  # The OpenID provider (e2e/idp.sh) on the host end of the veth, for the gateway's pod.
  if [ "${idp_enabled:-0}" = 1 ]; then
    in_node iptables -t raw -A HAVEN-GUARD -d "$host_ip" -p tcp --dport "$idp_port" -j RETURN
  fi
  # The access gateway's answers (its container port) to the tests' browser on the host, which
  # reaches it at the node's NodePort with its own address kept (externalTrafficPolicy Local).
  in_node iptables -t raw -A HAVEN-GUARD -d "$host_ip" -p tcp --sport "$gateway_port" -j RETURN
  in_node iptables -t raw -A HAVEN-GUARD -m comment --comment "haven guard: off-node" -j DROP
  in_node iptables -t raw -A PREROUTING -s "$node_pod_cidr" -j HAVEN-GUARD
}

cmd_guard_drops() {
  in_node iptables -t raw -L HAVEN-GUARD -v -x -n | awk '/haven guard: off-node/ {print $1}'
}

# Machine-wide things real nodes change: the sysctls kubelet sets, the /run/netns mount
# `ip netns` makes and the host's nat table the DNAT rule needs. The first real node on the
# machine records how they were; the last one to go puts them back. /run/haven-nodes/nodes
# lists the live nodes (id and state dir) under a lock.
host_record=/run/haven-nodes
node_sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory)

# with_host_lock CMD...: runs CMD holding the machine-wide lock.
with_host_lock() {
  mkdir -p "$host_record"
  (
    flock 9
    "$@"
  ) 9>"$host_record/lock"
}

# Drops entries of nodes whose state dir is gone (a cluster that died without `down`).
live_nodes() {
  local id dir
  [ -f "$host_record/nodes" ] || return 0
  while read -r id dir; do [ -f "$dir/node/id" ] && echo "$id $dir"; done <"$host_record/nodes"
}

claim_locked() {
  local live
  live="$(live_nodes)"
  if [ -z "$live" ]; then
    local s
    for s in "${node_sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$host_record/sysctls"
    rm -f "$host_record/had-netns-mount" "$host_record/had-nat-table"
    grep -q ' /run/netns ' /proc/self/mounts && touch "$host_record/had-netns-mount"
    nft list table ip nat >/dev/null 2>&1 && touch "$host_record/had-nat-table"
  fi
  { [ -n "$live" ] && echo "$live"; echo "$node_id $state"; } >"$host_record/nodes.new"
  mv "$host_record/nodes.new" "$host_record/nodes"
}
host_claim() { with_host_lock claim_locked; }

release_locked() {
  live_nodes | awk -v id="$node_id" '$1 != id' >"$host_record/nodes.new"
  mv "$host_record/nodes.new" "$host_record/nodes"
  [ -s "$host_record/nodes" ] && return 0
  if [ ! -e "$host_record/had-netns-mount" ] && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
    umount /run/netns 2>/dev/null || true
  fi
  if [ ! -e "$host_record/had-nat-table" ] && ! iptables -t nat -S | grep -q '^-A'; then
    nft delete table ip nat 2>/dev/null || true
  fi
  local line
  if [ -f "$host_record/sysctls" ]; then
    while read -r line; do sysctl -qw "$line" || true; done <"$host_record/sysctls"
  fi
  rm -rf "$host_record"
}
host_release() { with_host_lock release_locked; }

# ---------------------------------------------------------------- after the API server

node_up() {
  node_ids
  [ -n "${NODE_BIN:-}" ] || NODE_BIN="$(node_bin_dir)"
  node_certs
  write_containerd_config
  write_cni_config
  write_kubelet_config
  write_kube_proxy_config
  make_cgroup_root
  start_in "$node_netns" containerd containerd --config "$node_dir/containerd.toml"
  wait_for "containerd answers" ctr_ok
  node_images
  start_in "$node_netns" kubelet "$NODE_BIN/kubelet" --config="$node_dir/kubelet.yaml" \
    --kubeconfig="$node_dir/kubelet.kubeconfig" --root-dir="$node_dir/kubelet" --cert-dir="$node_dir/kubelet/pki" \
    --hostname-override="$node_name" --node-ip="$node_ip" --node-labels=haven.io/real-node=true --v=1
  start_in "$node_netns" kube-proxy "$NODE_BIN/kube-proxy" --config="$node_dir/kube-proxy.yaml" --hostname-override="$node_name"
  # kube-router finds its node by name: it starts once the kubelet has registered it.
  wait_for "real node $node_name Ready" real_node_ready
  kube_router_rbac | kubectl apply -f - >/dev/null
  start_in "$node_netns" kube-router "$NODE_BIN/kube-router" --kubeconfig="$node_dir/kube-router.kubeconfig" \
    --hostname-override="$node_name" --run-firewall=true --run-router=false --run-service-proxy=false \
    --run-loadbalancer=false --enable-cni=false --enable-ipv6=false --metrics-port=0 --health-port=20244 \
    --iptables-sync-period=30s
  start_outside_listeners
  deploy_coredns
  wait_for "CoreDNS Ready" coredns_ready
}

ctr_ok() { ctr --address "$node_dir/containerd.sock" version; }
real_node_ready() {
  [ "$(kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
coredns_ready() {
  [ "$(kubectl -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}')" = 1 ]
}

node_certs() {
  local kubelet_serving="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:$node_ip,DNS:$node_name"
  sign kubelet "/O=system:nodes/CN=system:node:$node_name" "$kubelet_serving" "$node_dir"
  sign kube-proxy "/CN=system:kube-proxy" "$client_ext" "$node_dir"
  sign kube-router "/CN=haven:kube-router" "$client_ext" "$node_dir"
  local c
  for c in kubelet kube-proxy kube-router; do
    write_kubeconfig "$node_dir/$c.kubeconfig" "$c" "$node_dir/$c.crt" "$node_dir/$c.key"
    sed -i "s#https://127.0.0.1:#https://$host_ip:#" "$node_dir/$c.kubeconfig"
  done
}

write_containerd_config() {
  mkdir -p "$node_dir/containerd"
  cat >"$node_dir/containerd.toml" <<EOF
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
[grpc]
  address = "$node_dir/containerd.sock"
[ttrpc]
  address = "$node_dir/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # Root here lacks CAP_SYS_RESOURCE: runc must not try to lower oom_score_adj.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$node_dir/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
[plugins."io.containerd.internal.v1.opt"]
  path = "$node_dir/containerd/opt"
EOF
}

write_cni_config() {
  mkdir -p "$node_dir/cni" "$node_dir/cni-ipam"
  cat >"$node_dir/cni/10-haven.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "haven",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$node_dir/cni-ipam",
        "ranges": [[{"subnet": "$node_pod_cidr", "gateway": "$node_bridge_ip"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$node_dir/kubelet" "$node_dir/pod-logs"
  # Pods get the cluster DNS only: the host's resolver and search domains stay out.
  echo "nameserver $node_dns_ip" >"$node_dir/resolv.conf"
  cat >"$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1 (cgroup2 only at /sys/fs/cgroup/unified); 1.35 refuses it by default.
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: /$(cgroup_root_name)
containerRuntimeEndpoint: unix://$node_dir/containerd.sock
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $certs/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $node_dir/kubelet.crt
tlsPrivateKeyFile: $node_dir/kubelet.key
clusterDNS: [$node_dns_ip]
clusterDomain: cluster.local
resolvConf: $node_dir/resolv.conf
podCIDR: $node_pod_cidr
podLogsDir: $node_dir/pod-logs
serializeImagePulls: false
# A busy test machine must not evict the tests' pods.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
EOF
}

write_kube_proxy_config() {
  cat >"$node_dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $node_pod_cidr
clientConnection: {kubeconfig: $node_dir/kube-proxy.kubeconfig}
iptables: {localhostNodePorts: false}
# conntrack limits are machine-wide: leave them as they are.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
}

make_cgroup_root() {
  local c
  for c in /sys/fs/cgroup/*/; do
    case "$c" in */unified/) continue ;; esac
    mkdir -p "$c$(cgroup_root_name)"
  done
}

kube_router_rbac() {
  cat <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "haven:kube-router"}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, endpoints, nodes]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "haven:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "haven:kube-router"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "haven:kube-router"}
EOF
}

# ---------------------------------------------------------------- images

# Imports the images pods on this node run: the sandbox, CoreDNS, the test environment and
# the operator (images/build.sh), and a Python environment with a TES client
# (images/python-tes.sh, cached by version). No container engine, no registry.
node_images() {
  local out
  out="$("$repo/images/build.sh" --node-bin "$NODE_BIN")"
  local name tar
  while IFS=' ' read -r name tar; do
    [ -n "$name" ] && cmd_load_image "$tar" "$name"
  done <"$out/images.txt"
  out="$("$repo/images/python-tes.sh" "$NODE_BIN")"
  read -r name tar <<<"$out"
  cmd_load_image "$tar" "$name"
}

cmd_load_image() {
  local tar="$1" name="$2"
  ctr --address "$node_dir/containerd.sock" -n k8s.io images import --index-name "$name" "$tar" >/dev/null
  say "image $name imported"
}

# ---------------------------------------------------------------- in-cluster pieces

# HTTP listeners on the stand-ins' ports, so a probe that is refused there is refused by a
# policy and not by an empty address.
start_outside_listeners() {
  local port
  for port in "${outside_ports[@]}"; do
    # argv[0] names the state dir, which is how cluster.sh knows the process is this cluster's.
    start_in "$outside_netns" "outside-$port" bash -c 'exec -a "$0" "$1" serve --port "$2"' \
      "$node_dir/outside-$port" "$(testenv_binary)" "$port"
  done
}

testenv_binary() { echo "$repo/target/image/x86_64-unknown-linux-gnu/release/haven-testenv"; }

deploy_coredns() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  # No forward plugin: names outside the cluster are not resolved, so no query leaves.
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
        loop
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      nodeSelector: {haven.io/real-node: "true"}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {type: RuntimeDefault}
        # Port 53 without root or capabilities: a namespaced sysctl Kubernetes counts as safe.
        sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "53"}]
      containers:
      - name: coredns
        image: haven.local/coredns:$COREDNS_VERSION
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
        volumeMounts: [{name: config, mountPath: /etc/coredns}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $node_dns_ip
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

# ---------------------------------------------------------------- down

# Stops the node's processes (containers first, through the kubelet's runtime) and removes
# everything it added to the host: namespaces (with their bridge, rules and ipsets), the
# host's DNAT rule, cgroups, mounts and sysctls.
node_down() {
  [ -f "$state/node/id" ] || return 0
  node_id="$(cat "$state/node/id")"
  APISERVER_PORT="$node_id"
  node_ids
  stop_group kube-router kube-proxy kubelet
  remove_containers
  local port
  for port in "${outside_ports[@]}"; do stop_group "outside-$port"; done
  stop_group containerd
  pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io -address $node_dir/containerd.sock" 2>/dev/null || true
  unmount_under "$node_dir"
  local c
  for c in /sys/fs/cgroup/*/"$(cgroup_root_name)"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  while iptables -t nat -D PREROUTING -i "$host_if" -d "$host_ip" -p tcp --dport "$node_id" \
    -m comment --comment "haven node $node_id: API server" -j DNAT --to-destination "127.0.0.1:$node_id" 2>/dev/null; do :; done
  ip netns del "$outside_netns" 2>/dev/null || true
  ip netns del "$node_netns" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
  host_release
}

# Every pod sandbox and container, through the CRI, while containerd still runs.
remove_containers() {
  component_pid containerd >/dev/null || return 0
  local sock="$node_dir/containerd.sock" ids
  ids="$(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null || true)"
  local id
  for id in $ids; do ctr --address "$sock" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
  sleep 1
  for id in $ids; do ctr --address "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null || true); do
    ctr --address "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
  done
}

unmount_under() {
  local dir="$1" m
  # Deepest first; a netns or overlay mount left behind would keep the state dir busy.
  for m in $(awk -v d="$dir" '$2 ~ "^"d {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- commands

node_main() {
  say() { echo "[node] $*" >&2; }
  state="${HAVEN_CLUSTER_DIR:-$node_here/../.cluster}"
  case "$state" in /*) ;; *) state="$PWD/$state" ;; esac
  state="${state%/}"
  [ -f "$state/node/id" ] || { echo "[node] no real node in $state" >&2; exit 1; }
  node_id="$(cat "$state/node/id")"
  APISERVER_PORT="$node_id"
  node_ids
  case "${1:-}" in
    guard-drops) cmd_guard_drops ;;
    exec) shift; in_node "$@" ;;
    outside) shift; in_outside "$@" ;;
    load-image) shift; cmd_load_image "$@" ;;
    images) NODE_BIN="$(node_bin_dir)"; node_images ;;
    env) printf 'NODE_NAME=%s\nNODE_IP=%s\nHOST_IP=%s\nPOD_CIDR=%s\nOUTSIDE_INTERNET=%s\nOUTSIDE_METADATA=%s\nOUTSIDE_MIRROR=%s\n' \
      "$node_name" "$node_ip" "$host_ip" "$node_pod_cidr" "$outside_internet" "$outside_metadata" "$outside_mirror" ;;
    *) sed -n '20,26p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # shellcheck source=e2e/versions.env
  source "$node_here/versions.env"
  repo="$(cd "$node_here/.." && pwd)"
  node_main "$@"
fi
