#!/usr/bin/env bash
# Builds Haven's images without a container engine and prints the directory holding them:
# static binaries (cargo, glibc linked in), one layer each written by GNU tar, and the image
# assembled by crane through a registry it serves on loopback for the length of the build.
# The Dockerfile at the repository's root builds the same operator image with a container
# engine.
#
#   <out>/images.txt   one line per image: NAME ARCHIVE (for `ctr images import`)
#   ghcr.io/haven-spe/haven:<version>   the operator (and every `haven` subcommand)
#   haven.local/testenv:<version>       the real-node tests' analysis environment (8888)
#   registry.k8s.io/pause:3.10          the node's sandbox image (haven-testenv pause)
#   haven.local/coredns:<version>       cluster DNS (with --node-bin, from its build)
#
# Usage: images/build.sh [--node-bin DIR]   (DIR: e2e/build-node.sh's output, for crane and coredns)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
source "$repo/e2e/versions.env"
node_bin="${2:-}"
[ "${1:-}" = --node-bin ] && [ -n "$node_bin" ] || node_bin="$("$repo/e2e/build-node.sh")"
say() { echo "[images] $*" >&2; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)"
target=x86_64-unknown-linux-gnu
target_dir="$repo/target/image"
binaries="$target_dir/$target/release"
out="$repo/target/images"
mkdir -p "$out"

say "building static haven and haven-testenv $version (release; first build about 8 min on 2 cores)"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
  cargo build --release --locked --quiet --target "$target" -p haven -p haven-testenv >&2

# One registry for this build, on a free loopback port, gone when the build ends.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
registry="127.0.0.1:$port"
"$node_bin/crane" registry serve --address "$registry" 2>/dev/null &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true; rm -rf "$work"' EXIT
work="$(mktemp -d)"
for _ in $(seq 50); do curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

# image NAME ENTRYPOINT USER FILE:PATH...: a one-layer image whose files are FILEs at PATHs.
image() {
  local name="$1" entrypoint="$2" user="$3"; shift 3
  local root="$work/${name//[\/:]/_}" spec
  mkdir -p "$root/tmp"
  chmod 1777 "$root/tmp"
  for spec in "$@"; do install -D -m 0755 "${spec%%:*}" "$root/${spec#*:}"; done
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$root.tar" .
  local staged="$registry/${name%%:*}:build"
  "$node_bin/crane" append --insecure --oci-empty-base -f "$root.tar" -t "$staged" >/dev/null 2>&1
  "$node_bin/crane" mutate --insecure "$staged" --entrypoint "$entrypoint" --user "$user" \
    --set-platform linux/amd64 -l "org.opencontainers.image.version=$version" \
    -l "org.opencontainers.image.source=https://github.com/haven-spe/haven" \
    -l "org.opencontainers.image.licenses=Apache-2.0" -t "$staged" >/dev/null 2>&1
  local archive="$out/${name//[\/:]/_}.tar"
  "$node_bin/crane" pull --insecure "$staged" "$archive"
  echo "$name $archive" >>"$out/images.txt.new"
  say "$name: $(du -h "$archive" | cut -f1)"
}

rm -f "$out/images.txt.new"
image "ghcr.io/haven-spe/haven:$version" /haven 65532:65532 "$binaries/haven:haven"
image "haven.local/testenv:$version" /haven-testenv 65532:65532 "$binaries/haven-testenv:haven-testenv"
image "registry.k8s.io/pause:3.10" /haven-testenv,pause 65532:65532 "$binaries/haven-testenv:haven-testenv"
image "haven.local/coredns:$COREDNS_VERSION" /coredns 65532:65532 "$node_bin/coredns:coredns"
mv "$out/images.txt.new" "$out/images.txt"
echo "$out"
