#!/usr/bin/env bash
# A real analysis environment for `make demo`: JupyterLab from PyPI on Debian's Python, with
# py-tes so researchers have a GA4GH TES client, built without a container engine
# (images/python-lib.sh) and cached in ~/.cache/haven/images keyed by its versions.
# Prints: NAME ARCHIVE.
#
# JupyterLab runs without a token: its Service is reachable only from the access gateway's
# namespace, and the gateway is what authenticates (DESIGN: the door).
#
# Usage: images/jupyterlab.sh [NODE_BIN]   (e2e/build-node.sh's output, for crane)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
source "$repo/e2e/versions.env"
# shellcheck disable=SC2034  # read by python-lib.sh
IMAGE_PREFIX="jupyterlab"
# shellcheck source=images/python-lib.sh
source "$repo/images/python-lib.sh"
python_image "haven.local/jupyterlab:${JUPYTERLAB_VERSION}" \
  "$(image_cache)/jupyterlab-${JUPYTERLAB_VERSION}_py-tes-${PY_TES_VERSION}_${DEBIAN_SUITE}.tar" "${1:-}" \
  /opt/jupyter "jupyterlab==${JUPYTERLAB_VERSION}" "py-tes==${PY_TES_VERSION}" -- \
  --entrypoint /opt/jupyter/bin/jupyter \
  --cmd lab,--ip=0.0.0.0,--port=8888,--no-browser,--ServerApp.token=,--ServerApp.password=,--ServerApp.root_dir=/home \
  -l "org.opencontainers.image.version=${JUPYTERLAB_VERSION}"
