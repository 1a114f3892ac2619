#!/usr/bin/env bash
# A plain Python analysis environment with py-tes (a GA4GH TES client) on Debian's Python,
# built without a container engine (images/python-lib.sh) and cached in
# ~/.cache/haven/images keyed by its versions. Prints: NAME ARCHIVE.
#
# Its default command serves /tmp over plain HTTP on 8888, the port a workspace's readiness
# probe checks; /tmp because the environment's root filesystem is read-only and /tmp is its
# emptyDir (crates/haven-operator/src/workspace/build/environment.rs). A Job or TES task
# replaces the command with its own.
#
# Usage: images/python-tes.sh [NODE_BIN]   (e2e/build-node.sh's output, for crane)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
source "$repo/e2e/versions.env"
# shellcheck disable=SC2034  # read by python-lib.sh
IMAGE_PREFIX="python-tes"
# shellcheck source=images/python-lib.sh
source "$repo/images/python-lib.sh"
python_image "haven.local/python-tes:${PY_TES_VERSION}" \
  "$(image_cache)/python-tes-${PY_TES_VERSION}_${DEBIAN_SUITE}.tar" "${1:-}" \
  /opt/python-tes "py-tes==${PY_TES_VERSION}" -- \
  --cmd /opt/python-tes/bin/python3,-m,http.server,8888,--bind,0.0.0.0,--directory,/tmp \
  -l "org.opencontainers.image.version=${PY_TES_VERSION}"
