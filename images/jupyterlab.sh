#!/usr/bin/env bash
# A real analysis environment for `make demo`: JupyterLab from PyPI on Debian's Python, built
# without a container engine and cached in ~/.cache/haven/images keyed by its versions. The
# root filesystem comes from mmdebstrap (Debian's packages); the wheels are fetched by the
# host's pip (which trusts the host's certificate store) and installed offline inside it;
# crane makes the image. Prints: NAME ARCHIVE.
#
# JupyterLab runs without a token: its Service is reachable only from the access gateway's
# namespace, and the gateway is what authenticates (DESIGN: the door).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
source "$repo/e2e/versions.env"
node_bin="${1:-$("$repo/e2e/build-node.sh")}"
say() { echo "[jupyterlab] $*" >&2; }
name="haven.local/jupyterlab:${JUPYTERLAB_VERSION}"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}/images"
archive="$cache/jupyterlab-${JUPYTERLAB_VERSION}_${DEBIAN_SUITE}.tar"
if [ -s "$archive" ]; then echo "$name $archive"; exit 0; fi

command -v mmdebstrap >/dev/null || {
  say "installing mmdebstrap"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap; } >&2
}
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'kill "${registry_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
started=$SECONDS
say "fetching JupyterLab ${JUPYTERLAB_VERSION} wheels for ${DEBIAN_SUITE}'s Python 3.11"
pip download --quiet --dest "$work/wheels" --only-binary=:all: --implementation cp --python-version 3.11.2 \
  --platform manylinux_2_36_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform linux_x86_64 "jupyterlab==${JUPYTERLAB_VERSION}" >&2
say "assembling the root filesystem (Debian ${DEBIAN_SUITE} minbase + python3)"
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv "$DEBIAN_SUITE" "$work/rootfs.tar" \
  http://deb.debian.org/debian \
  --customize-hook="copy-in $work/wheels /tmp" \
  --customize-hook='chroot "$1" python3 -m venv /opt/jupyter' \
  --customize-hook='chroot "$1" env PIP_FIND_LINKS= /opt/jupyter/bin/pip install --quiet --no-index --no-cache-dir --find-links /tmp/wheels jupyterlab' \
  --customize-hook='rm -rf "$1/tmp/wheels"' \
  --customize-hook='chroot "$1" useradd --uid 1000 --gid 100 --home-dir /home --no-create-home jovyan' >&2

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$node_bin/crane" registry serve --address "127.0.0.1:$port" 2>/dev/null &
registry_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
staged="127.0.0.1:$port/jupyterlab:build"
"$node_bin/crane" append --insecure --oci-empty-base -f "$work/rootfs.tar" -t "$staged" >/dev/null 2>&1
"$node_bin/crane" mutate --insecure "$staged" --user 1000:100 --workdir /home \
  --env HOME=/home --env SHELL=/bin/bash --env PATH=/opt/jupyter/bin:/usr/local/bin:/usr/bin:/bin \
  --set-platform linux/amd64 --entrypoint /opt/jupyter/bin/jupyter \
  --cmd lab,--ip=0.0.0.0,--port=8888,--no-browser,--ServerApp.token=,--ServerApp.password=,--ServerApp.root_dir=/home \
  -l "org.opencontainers.image.version=${JUPYTERLAB_VERSION}" -t "$staged" >/dev/null 2>&1
"$node_bin/crane" pull --insecure "$staged" "$archive.partial"
mv "$archive.partial" "$archive"
say "$name: $(du -h "$archive" | cut -f1) in $((SECONDS - started)) s"
echo "$name $archive"
