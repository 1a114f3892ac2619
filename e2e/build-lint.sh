#!/usr/bin/env bash
# Builds the linters `make lint` runs beside cargo's (actionlint for .github/workflows), once
# per version, into ~/.cache/haven, and prints the bin directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/versions.env"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}"
bin="$cache/bin/lint_actionlint-${ACTIONLINT_VERSION}"
export GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0
# shellcheck disable=SC2034  # read by build-lib.sh
BUILD_PREFIX=lint
# shellcheck source=e2e/build-lib.sh
source "$here/build-lib.sh"
mkdir -p "$bin"
if missing_in "$bin" actionlint; then
  say "building actionlint ${ACTIONLINT_VERSION}"
  GOBIN="$bin" with_heartbeat actionlint go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
fi
echo "$bin"
