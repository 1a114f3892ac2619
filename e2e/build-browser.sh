#!/usr/bin/env bash
# A real browser for `make demo`: Debian's chromium and chromium-driver (WebDriver), and
# certutil (libnss3-tools) to give each run's profile a certificate store that trusts only the
# local cluster's CA. Installs what is missing with apt-get; prints nothing on stdout.
set -euo pipefail
say() { echo "[browser] $*" >&2; }
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v certutil >/dev/null || missing+=(libnss3-tools)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} (Debian packages)"
  { apt-get update && apt-get install -y "${missing[@]}"; } >&2
fi
say "$(chromium --version 2>/dev/null | head -1)"
