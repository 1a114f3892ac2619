# shellcheck shell=bash
# Shared by images/jupyterlab.sh and images/python-tes.sh: a Python image built without a
# container engine. The root filesystem comes from mmdebstrap (Debian's packages); the
# wheels are fetched by the host's pip (which trusts the host's certificate store) and
# installed offline into a venv inside it; crane makes the image through a registry it
# serves on loopback for the length of the build. Callers source e2e/versions.env first
# and set IMAGE_PREFIX for `say`.

image_lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "[${IMAGE_PREFIX:-image}] $*" >&2; }

# The cached archives, keyed by version in their file names.
image_cache() { echo "${HAVEN_CACHE:-$HOME/.cache/haven}/images"; }

# python_image NAME ARCHIVE NODE_BIN VENV REQUIREMENT... -- MUTATE_ARG...: builds NAME into
# ARCHIVE unless it is there, then prints NAME ARCHIVE. Every such image runs as 1000:100
# (the operator's runAsUser/runAsGroup) in /home with VENV's bin first on PATH; MUTATE_ARGs
# (crane mutate's: command, labels) add the rest. NODE_BIN (e2e/build-node.sh's, for crane)
# is looked up when empty and only on a cache miss. Sets an EXIT trap (scratch and registry).
python_image() {
  local name="$1" archive="$2" node_bin="$3" venv="$4"; shift 4
  local requirements=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do requirements+=("$1"); shift; done
  shift
  if [ -s "$archive" ]; then echo "$name $archive"; return; fi
  [ -n "$node_bin" ] || node_bin="$("$image_lib_dir/../e2e/build-node.sh")"
  mkdir -p "$(dirname "$archive")"
  image_work="$(mktemp -d)"
  trap 'kill "${image_registry_pid:-}" 2>/dev/null || true; rm -rf "$image_work"' EXIT
  local started=$SECONDS
  python_rootfs "$image_work/rootfs.tar" "$venv" "${requirements[@]}"
  image_archive "$node_bin" "$image_work/rootfs.tar" "$archive" --user 1000:100 --workdir /home \
    --env HOME=/home --env SHELL=/bin/bash --env "PATH=$venv/bin:/usr/local/bin:/usr/bin:/bin" \
    --set-platform linux/amd64 "$@"
  say "$name: $(du -h "$archive" | cut -f1) in $((SECONDS - started)) s"
  echo "$name $archive"
}

# python_rootfs TAR VENV REQUIREMENT...: Debian's minbase with python3 and REQUIREMENTs in a
# venv at VENV, and the user jovyan (1000:100), as one tar.
python_rootfs() {
  local tar="$1" venv="$2"; shift 2
  local python
  case "$DEBIAN_SUITE" in
    bookworm) python=3.11.2 ;;  # the suite's python3, for which the wheels are chosen
    *) say "python-lib.sh: add ${DEBIAN_SUITE}'s python3 version"; return 1 ;;
  esac
  command -v mmdebstrap >/dev/null || {
    say "installing mmdebstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap; } >&2
  }
  say "fetching wheels for ${DEBIAN_SUITE}'s Python $python: $*"
  pip download --quiet --dest "$image_work/wheels" --only-binary=:all: --implementation cp --python-version "$python" \
    --platform manylinux_2_36_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform linux_x86_64 "$@" >&2
  say "assembling the root filesystem (Debian ${DEBIAN_SUITE} minbase + python3)"
  # The hooks run in a shell of mmdebstrap's, $1 its root: the requirements travel quoted.
  # shellcheck disable=SC2016
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv "$DEBIAN_SUITE" "$tar" \
    http://deb.debian.org/debian \
    --customize-hook="copy-in $image_work/wheels /tmp" \
    --customize-hook="chroot \"\$1\" python3 -m venv $venv" \
    --customize-hook="chroot \"\$1\" env PIP_FIND_LINKS= $venv/bin/pip install --quiet --no-index --no-cache-dir --find-links /tmp/wheels$(printf ' %q' "$@")" \
    --customize-hook='rm -rf "$1/tmp/wheels"' \
    --customize-hook='chroot "$1" useradd --uid 1000 --gid 100 --home-dir /home --no-create-home jovyan' >&2
}

# image_archive NODE_BIN TAR ARCHIVE MUTATE_ARG...: a one-layer image of TAR, configured by
# crane mutate's MUTATE_ARGs, written to ARCHIVE (renamed into place only when complete).
image_archive() {
  local crane="$1/crane" tar="$2" archive="$3"; shift 3
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$crane" registry serve --address "127.0.0.1:$port" 2>/dev/null &
  image_registry_pid=$!
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
  local staged="127.0.0.1:$port/image:build"
  "$crane" append --insecure --oci-empty-base -f "$tar" -t "$staged" >/dev/null 2>&1
  "$crane" mutate --insecure "$staged" "$@" -t "$staged" >/dev/null 2>&1
  "$crane" pull --insecure "$staged" "$archive.partial"
  mv "$archive.partial" "$archive"
  kill "$image_registry_pid" 2>/dev/null || true
}
