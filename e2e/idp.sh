# shellcheck shell=bash
# shellcheck disable=SC2154  # sourced by cluster.sh: state, certs, here, real_node, host_ip, timeout_s, say, die, sign, start, stop_group, component_pid are its
# shellcheck disable=SC2034  # idp_enabled, idp_port and failed are read by cluster.sh and node.sh
# The tests' OpenID provider: Keycloak (e2e/build-idp.sh) as a host process of the cluster,
# realm `haven` from e2e/idp/realm.json with secrets made fresh for each cluster.
#
#   host netns                                        node netns
#   Keycloak https://<host_ip>:8443/realms/haven  <--  gateway pod (masqueraded to the node's eth0)
#   (the host end of the real node's veth)             test process on the host: same URL
#
# Without a real node it binds to 127.0.0.1 instead. Never to 0.0.0.0. Its certificate is
# signed by the cluster CA (IP SAN: the address it binds to).
#
# Sourced by e2e/cluster.sh when HAVEN_IDP=1: idp_start once the certificates exist (the
# Java start-up overlaps the rest of `up`), idp_wait at the end of `up`, idp_down in teardown.
# Writes $state/idp.env (shell assignments, mode 600):
#   IDP_ISSUER_URL IDP_CA_FILE IDP_CLIENT_ID IDP_CLIENT_SECRET IDP_CLI_CLIENT_ID
#   IDP_ADMIN_USER IDP_ADMIN_PASSWORD IDP_USERS (short names)
#   IDP_<NAME>_EMAIL IDP_<NAME>_PASSWORD for ADA BEN CY OLI, and IDP_ADA_TOTP_SECRET (base32)
# The administrator is realm haven's (role realm-admin; a token from that realm's admin-cli
# client with the password grant); the master realm has no user at all.
#
# Environment: HAVEN_IDP=1 turns it on; HAVEN_IDP_PORT (default 8443) its HTTPS port;
# HAVEN_IDP_JAVA_OPTS replaces the JIT option below (for measurements).

idp_enabled="${HAVEN_IDP:-0}"
idp_port="${HAVEN_IDP_PORT:-8443}"
idp_realm=haven
idp_env_file="$state/idp.env"
idp_dir="$state/idp"
# C1 only: start-up runs most methods once (10-12 s here against 14-16 s with C2). Narayana's
# process id from a UUID, not from a loopback socket it would otherwise keep open. The
# add-opens JBoss Threads asks for on Java 24+ (else a stack trace when Keycloak stops).
idp_java_opts="${HAVEN_IDP_JAVA_OPTS--XX:TieredStopAtLevel=1} --add-opens=java.base/java.lang=ALL-UNNAMED"
idp_java_opts+=" -Dcom.arjuna.ats.arjuna.common.CoreEnvironmentBean.processImplementationClassName=com.arjuna.ats.internal.arjuna.utils.UuidProcessId"
# A cluster that has a provider keeps it: `up` and `status` look at its process too.
if [ -f "$idp_dir/port" ]; then idp_enabled=1; idp_port="$(cat "$idp_dir/port")"; fi

idp_host() { if [ "$real_node" = 1 ]; then echo "$host_ip"; else echo 127.0.0.1; fi; }

# Starts Keycloak in the background (tracked by cluster.sh's `start` as `keycloak`).
idp_start() {
  local out kc jdk host d
  out="$("$here/build-idp.sh")" || return 1
  kc="$(sed -n 1p <<<"$out")"
  jdk="$(sed -n 2p <<<"$out")"
  host="$(idp_host)"
  if [ "$host" = 127.0.0.1 ] && ! python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$idp_port" 2>/dev/null; then
    say "port 127.0.0.1:$idp_port is taken: set HAVEN_IDP_PORT"
    return 1
  fi
  # Keycloak keeps its data (H2 database, scratch files) under its home directory: a home of
  # the cluster's own whose code links to the cache.
  mkdir -p "$idp_dir/home/data/import" "$idp_dir/home/data/h2"
  chmod 700 "$idp_dir"
  for d in bin conf lib providers themes; do ln -sfn "$kc/$d" "$idp_dir/home/$d"; done
  # A database whose schema and master realm build-idp.sh made: Keycloak's first start need
  # not make them again (about half its start-up).
  [ -f "$idp_dir/home/data/h2/keycloakdb.mv.db" ] || cp "$kc/haven-db/keycloakdb.mv.db" "$idp_dir/home/data/h2/"
  echo "$idp_port" >"$idp_dir/port"
  sign idp "/CN=haven-idp" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$host" "$idp_dir"
  openssl pkcs8 -topk8 -nocrypt -in "$idp_dir/idp.key" -out "$idp_dir/idp.pkcs8.key"
  # The realm's token signing key, from openssl: Keycloak's own RSA key generation (Bouncy
  # Castle, at start-up) takes seconds.
  openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=$idp_realm" -days 3650 \
    -keyout "$idp_dir/realm-rsa.key" -out "$idp_dir/realm-rsa.crt" 2>/dev/null
  idp_write_realm "https://$host:$idp_port/realms/$idp_realm"
  idp_t0=$SECONDS
  # -Dkc.home.dir after kc.sh's own: the last definition wins.
  start keycloak env JAVA_HOME="$jdk" \
    JAVA_OPTS_APPEND="$idp_java_opts" \
    "$kc/bin/kc.sh" "-Dkc.home.dir=$idp_dir/home" start --optimized --import-realm \
    --http-host="$host" --https-port="$idp_port" --hostname="https://$host:$idp_port" \
    --https-certificate-file="$idp_dir/idp.crt" --https-certificate-key-file="$idp_dir/idp.pkcs8.key" \
    --cache=local --log-level=info
}

# Fresh secrets for this cluster: the realm file Keycloak imports and idp.env, both mode 600.
idp_write_realm() {
  (
    umask 077
    python3 - "$here/idp/realm.json" "$idp_dir/home/data/import/haven-realm.json" "$idp_env_file" \
      "$1" "$certs/ca.crt" "$idp_dir/realm-rsa.key" "$idp_dir/realm-rsa.crt" <<'PY'
import base64, json, secrets, shlex, string, sys
template, realm_out, env_out, issuer, ca, key, cert = sys.argv[1:]
alphabet = string.ascii_letters + string.digits
def secret(n):
    return "".join(secrets.choice(alphabet) for _ in range(n))
users = ["ada", "ben", "cy", "oli"]
values = {"client_secret": secret(32), "admin_password": secret(20), **{f"{u}_password": secret(20) for u in users}}
# Keycloak keeps a TOTP key as text and uses its bytes; apps are given those bytes in base32.
values["ada_totp_key"] = secret(20)
for name, path in (("signing_key", key), ("signing_certificate", cert)):
    with open(path) as f:
        values[name] = f.read()
with open(template) as f:
    text = string.Template(f.read()).substitute({k: json.dumps(v)[1:-1] for k, v in values.items()})
json.loads(text)
with open(realm_out, "w") as f:
    f.write(text)
env = {
    "IDP_ISSUER_URL": issuer,
    "IDP_CA_FILE": ca,
    "IDP_CLIENT_ID": "haven-gateway",
    "IDP_CLIENT_SECRET": values["client_secret"],
    "IDP_CLI_CLIENT_ID": "haven-cli",
    "IDP_ADMIN_USER": "admin@haven.test",
    "IDP_ADMIN_PASSWORD": values["admin_password"],
    "IDP_USERS": " ".join(users),
}
for u in users:
    env[f"IDP_{u.upper()}_EMAIL"] = f"{u}@haven.test"
    env[f"IDP_{u.upper()}_PASSWORD"] = values[f"{u}_password"]
env["IDP_ADA_TOTP_SECRET"] = base64.b32encode(values["ada_totp_key"].encode()).decode().rstrip("=")
with open(env_out, "w") as f:
    for k, v in env.items():
        f.write(f"{k}={shlex.quote(v)}\n")
PY
  )
}

idp_discovery() {
  curl -fsS --max-time 2 --cacert "$certs/ca.crt" \
    "https://$(idp_host):$idp_port/realms/$idp_realm/.well-known/openid-configuration" 2>/dev/null | grep -q '"issuer"'
}

# Waits (HAVEN_UP_TIMEOUT, progress every 10 s) for the discovery document.
idp_wait() {
  local deadline=$((SECONDS + timeout_s)) next=$((SECONDS + 10))
  while ! idp_discovery; do
    component_pid keycloak >/dev/null || { failed=keycloak; die "Keycloak exited before it served its discovery document"; }
    [ "$SECONDS" -lt "$deadline" ] || { failed=keycloak; die "Keycloak: no discovery document after ${timeout_s}s"; }
    if [ "$SECONDS" -ge "$next" ]; then say "waiting for Keycloak ($((SECONDS - idp_t0))s)"; next=$((SECONDS + 10)); fi
    sleep 0.25
  done
  say "Keycloak serves $(sed -n 's/^IDP_ISSUER_URL=//p' "$idp_env_file") (seen $((SECONDS - idp_t0))s after its start); credentials in $idp_env_file"
}

idp_up() { idp_start && idp_wait; }

idp_down() { stop_group keycloak; }
