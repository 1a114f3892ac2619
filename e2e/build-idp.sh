#!/usr/bin/env bash
# Fetches the tests' OpenID provider, Keycloak (org.keycloak:keycloak-quarkus-dist from Maven
# Central, with mvn), once per version, into ~/.cache/haven/keycloak-<version>, and prepares
# it there: `kc.sh build` (the options below are baked in, so each start is an optimized one)
# and an empty database with Keycloak's schema and master realm (haven-db/, copied into each
# cluster's state: a first start then skips about half its work). Prints two lines on stdout:
# the Keycloak directory, then the JDK (>= 21) that runs it. Progress on stderr.
#
# Java: $JAVA_HOME when it is 21 or later, else the newest JDK >= 21 under /usr/lib/jvm, else
# one from Debian (openjdk-25/21-jdk-headless) when the package index offers it. Debian 12
# offers none: there the script fails and says to install a JDK >= 21 (e.g. Temurin) and set
# JAVA_HOME.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/versions.env
source "$here/versions.env"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}"
dir="$cache/keycloak-${KEYCLOAK_VERSION}"
# Build-time options: an H2 file database (in each cluster's state dir, see idp.sh) and no
# management port (no health or metrics endpoints; the discovery document is the readiness
# check).
build_options=(--db=dev-file --health-enabled=false --metrics-enabled=false)
# shellcheck disable=SC2034  # read by build-lib.sh
BUILD_PREFIX=idp
# shellcheck source=e2e/build-lib.sh
source "$here/build-lib.sh"

java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }

# Prints a JAVA_HOME whose java is 21 or later.
find_jdk() {
  local candidate best="" best_major=0 major
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] || continue
    major="$(java_major "$candidate")"
    [[ "$major" =~ ^[0-9]+$ ]] || continue
    if [ "$candidate" = "${JAVA_HOME:-}" ] && [ "$major" -ge 21 ]; then echo "$candidate"; return 0; fi
    if [ "$major" -ge 21 ] && [ "$major" -gt "$best_major" ]; then best="$candidate"; best_major="$major"; fi
  done
  [ -n "$best" ] && echo "$best"
}

jdk="$(find_jdk || true)"
if [ -z "$jdk" ]; then
  say "no JDK >= 21 found (JAVA_HOME, /usr/lib/jvm); asking Debian's package index"
  apt-get update -qq >&2 || true
  for p in openjdk-25-jdk-headless openjdk-21-jdk-headless; do
    if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      say "installing $p"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >&2
      break
    fi
  done
  jdk="$(find_jdk || true)"
  [ -n "$jdk" ] || {
    say "ERROR: Keycloak ${KEYCLOAK_VERSION} needs Java 21 or later and none is installed or offered by apt"
    say "install one (e.g. Eclipse Temurin 21/25) and set JAVA_HOME"
    exit 1
  }
fi

stamp="${KEYCLOAK_VERSION} ${build_options[*]} haven-db"
if [ ! -f "$dir/.haven-build" ] || [ "$(cat "$dir/.haven-build")" != "$stamp" ]; then
  command -v mvn >/dev/null || { say "installing maven"; { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven; } >&2; }
  command -v unzip >/dev/null || { say "installing unzip"; { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip; } >&2; }
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.keycloak-${KEYCLOAK_VERSION}.XXXXXX")"
  trap 'rm -rf -- "$tmp"' EXIT
  started=$SECONDS
  say "fetching org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip (165 MB) with mvn (first run only)"
  if ! mvn -B -q --no-transfer-progress dependency:copy \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    say "ERROR: mvn could not fetch Keycloak (above)"
    exit 1
  fi
  say "fetched in $((SECONDS - started))s; unpacking"
  unzip -q "$tmp/keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip" -d "$tmp"
  rm -f "$tmp/keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip"
  say "kc.sh build ${build_options[*]} (Java $(java_major "$jdk") in $jdk)"
  JAVA_HOME="$jdk" with_heartbeat "Keycloak's optimized build" \
    "$tmp/keycloak-${KEYCLOAK_VERSION}/bin/kc.sh" build "${build_options[@]}"
  # `export` boots Keycloak without a listener: it creates the schema and the master realm
  # (no admin user: realm haven has its own) in data/h2, kept as haven-db/.
  say "creating the database template (schema and master realm)"
  JAVA_HOME="$jdk" with_heartbeat "Keycloak's database template" \
    "$tmp/keycloak-${KEYCLOAK_VERSION}/bin/kc.sh" export --optimized --realm master --dir "$tmp/export"
  mkdir "$tmp/keycloak-${KEYCLOAK_VERSION}/haven-db"
  mv "$tmp/keycloak-${KEYCLOAK_VERSION}/data/h2/keycloakdb.mv.db" "$tmp/keycloak-${KEYCLOAK_VERSION}/haven-db/"
  # Each cluster has a data dir of its own (e2e/idp.sh).
  rm -rf "$tmp/keycloak-${KEYCLOAK_VERSION}/data" "$tmp/export"
  echo "$stamp" >"$tmp/keycloak-${KEYCLOAK_VERSION}/.haven-build"
  old=""
  if [ -e "$dir" ]; then old="$tmp/old"; mv "$dir" "$old"; fi
  mv "$tmp/keycloak-${KEYCLOAK_VERSION}" "$dir"
  say "Keycloak ${KEYCLOAK_VERSION} ready in $dir ($((SECONDS - started))s)"
fi
echo "$dir"
echo "$jdk"
