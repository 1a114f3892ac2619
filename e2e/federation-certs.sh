#!/usr/bin/env bash
# A site's certificates for federation (mutual TLS between Haven sites), signed by that
# site's own cluster CA (<state>/certs/ca.{crt,key}, made by e2e/cluster.sh), as each site's
# own PKI would issue them:
#
#   <state>/federation/client.{crt,key}   CN=SITE, clientAuth: what SITE presents to a peer
#   <state>/federation/server.{crt,key}   CN=SITE, serverAuth, SAN IP:ADDRESS (with ADDRESS):
#                                         the requesting site's listener
#
# Usage: e2e/federation-certs.sh STATE SITE [ADDRESS]; prints <state>/federation.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '10p' "$0" | sed 's/^# //' >&2; exit 2; }
state="$1" site="$2" address="${3:-}"
ca="$state/certs/ca"
[ -f "$ca.key" ] || { echo "[federation] no cluster CA at $ca.key (is the cluster up?)" >&2; exit 1; }
[[ "$site" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "[federation] $site is not a DNS label" >&2; exit 1; }
dir="$state/federation"
mkdir -p "$dir"

# sign NAME EXTENSIONS: a P-256 key and a certificate CN=SITE for it, valid for a day.
sign() {
  local name="$1" ext="$2"
  (umask 077; openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null)
  openssl req -new -key "$dir/$name.key" -subj "/CN=$site" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 1 -sha256 \
    -extfile <(printf '%s\n' "$ext") -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr"
}

sign client "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
if [ -n "$address" ]; then
  sign server "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:$address"
fi
echo "$dir"
