#!/usr/bin/env bash
# Prints what a real node can change on this machine, in a stable form, so e2e/run-nodes.sh
# can prove `cluster.sh down` left the host as it found it: network namespaces, links,
# netfilter rules (iptables and nftables, counters dropped), ipsets, mounts, Haven's cgroups
# and the sysctls the kubelet sets.
set -uo pipefail
echo "== netns";   ip netns list 2>/dev/null | awk '{print $1}' | sort
echo "== links";   ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
echo "== iptables"; iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort
echo "== nft";     nft list tables 2>/dev/null | sort
echo "== ipsets";  ipset list -n 2>/dev/null | sort
echo "== mounts";  awk '{print $2}' /proc/self/mounts | grep -E 'haven|containerd|kubelet|netns' | sort
echo "== cgroups"; find /sys/fs/cgroup -maxdepth 2 -name 'haven-*' 2>/dev/null | sort
echo "== sysctls"; sysctl kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward
