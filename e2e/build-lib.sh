# shellcheck shell=bash
# Shared by the build scripts: progress on stderr while a cold Go build runs.
# Callers set `say`'s prefix with BUILD_PREFIX.

say() { echo "[${BUILD_PREFIX:-build}] $*" >&2; }

# with_heartbeat WHAT CMD...: runs CMD (output to stderr), printing a line every 30 s
# so a cold build does not look hung.
with_heartbeat() {
  local what="$1"; shift
  local started=$SECONDS
  ( while sleep 30; do say "  still building $what ($((SECONDS - started))s)"; done ) &
  local beat=$!
  if "$@" >&2; then kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
  else local rc=$?; kill "$beat" 2>/dev/null; return "$rc"; fi
  say "  built $what in $((SECONDS - started))s"
}

# missing DIR TOOL...: true when any TOOL is not an executable in DIR.
missing_in() { local dir="$1" t; shift; for t in "$@"; do [ -x "$dir/$t" ] || return 0; done; return 1; }

# Kubernetes' version stamps, so `kubelet --version` and the API's node info say K8S_VERSION.
k8s_ldflags() {
  local minor="${K8S_VERSION#v1.}" pkg flags="-s -w"
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=${K8S_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}
