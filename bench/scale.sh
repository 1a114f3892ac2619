#!/usr/bin/env bash
# `make bench`: the scale benchmarks of issue 8 (DESIGN §9) in one run, on local control
# planes of their own (.bench-cluster; a new, empty one with N Active permits for every run),
# with the operator built in release mode:
#   1. provisioning throughput: N workspaces created at once, until all Ready, against the
#      raw floor (crates/haven-bench applying the operator's own builders' objects itself);
#   2. writes to the API server while idle, after convergence;
#   3. the operator's peak RSS and CPU time;
#   4. teardown lag from expiresAt to access removed and to namespace deletion started;
#   5. how time and memory grow with N;
# and the one-at-a-time figure of bench/workspace-ready.sh. Prints the tables of
# BENCHMARKS.md; the JSON lines they come from, the operator's log and the summary stay in
# $BENCH_OUT.
#
# Settings (environment):
#   SIZES="50:3 200:3 1000:1"   N:repetitions, ascending; a repetition is one floor run and one
#                               operator run (a fresh operator process), in alternating order
#   IDLE_AT=200 IDLE_WINDOW=60s  idle writes after the last operator run at this N
#   TEARDOWN_N=50 TEARDOWN_SPREAD=60s TEARDOWN_LEAD=45s   expiries from LEAD after creation,
#                               spread over SPREAD (after the first size with N ≥ TEARDOWN_N)
#   SERIAL_RUNS=15              bench/workspace-ready.sh, one workspace at a time (0 skips it)
#   BENCH_OUT=target/bench/<time>
# A smoke run: SIZES="10:1 20:1" IDLE_AT=20 IDLE_WINDOW=10s TEARDOWN_N=10 TEARDOWN_SPREAD=10s
#   TEARDOWN_LEAD=20s SERIAL_RUNS=3 bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="${SIZES:-50:3 200:3 1000:1}"
idle_at="${IDLE_AT:-200}"
idle_window="${IDLE_WINDOW:-60s}"
teardown_n="${TEARDOWN_N:-50}"
teardown_spread="${TEARDOWN_SPREAD:-60s}"
teardown_lead="${TEARDOWN_LEAD:-45s}"
serial_runs="${SERIAL_RUNS:-15}"
out="${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
results="$out/results.jsonl"
: >"$results"
say() { echo "[bench] $*" >&2; }

largest=0
for spec in $sizes; do
  n="${spec%%:*}"
  [[ "$spec" =~ ^[0-9]+:[0-9]+$ ]] || { say "SIZES entries are N:REPS, not $spec"; exit 2; }
  [ "$n" -le "$largest" ] && { say "SIZES must ascend"; exit 2; }
  largest="$n"
done

bin=$(e2e/build-control-plane.sh)
export PATH="$bin:$PATH"
cargo build --quiet --release --locked -p haven -p haven-bench
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
haven="$target/haven"
bench="$target/haven-bench"

# A fake node holds 500 pods (e2e/cluster.sh); keep each under 400.
export HAVEN_KWOK_NODES=$(( (largest + 399) / 400 ))
export HAVEN_CLUSTER_DIR="$PWD/.bench-cluster"
operator=""
finish() {
  if [ -n "$operator" ]; then kill -TERM "$operator" 2>/dev/null; wait "$operator" 2>/dev/null; fi
  e2e/cluster.sh down
}
trap finish EXIT

# Machine and versions, first in the results.
# shellcheck disable=SC1091
source e2e/versions.env
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.lock || echo '+changes')"
python3 - "$results" "$commit" "$K8S_VERSION" "$KWOK_VERSION" "$HAVEN_KWOK_NODES" <<'PY'
import json, os, platform, re, sys, datetime
results, commit, k8s, kwok, nodes = sys.argv[1:]
mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
record = {"figure": "machine", "date": datetime.date.today().isoformat(), "nproc": os.cpu_count(),
          "cpu": cpu, "memory_gib": round(mem / 2**20), "kernel": platform.release(),
          "kubernetes": k8s, "kwok": kwok, "kwok_nodes": int(nodes), "haven": commit}
open(results, "a").write(json.dumps(record) + "\n")
print(json.dumps(record))
PY

# start_operator PERMITS: a fresh operator process; returns once it has reconciled the
# PERMITS permits that exist and gone quiet.
start_operator() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$haven" run --data-root "$data" --leader-election=false --metrics-address "127.0.0.1:$port" \
    --log-format json >>"$out/operator.log" 2>&1 &
  operator=$!
  metrics="127.0.0.1:$port"
  "$bench" settle --metrics "$metrics" --permits "$1" >>"$results"
}
stop_operator() {
  kill -TERM "$operator"
  wait "$operator" || true
  operator=""
}
record() { tee -a "$results" >&2; }

# fresh_cluster PERMITS: every run starts on a new, empty control plane (deleting hundreds of
# namespaces would take the controller-manager longer than the runs themselves) with the
# permits bench-p-0..PERMITS-1 Active and a new data store.
fresh_cluster() {
  e2e/cluster.sh down 2>/dev/null
  KUBECONFIG=$(e2e/cluster.sh up 2>>"$out/cluster.log")
  export KUBECONFIG
  "$haven" crd | kubectl apply --server-side -f - >/dev/null
  kubectl wait --for=condition=Established --timeout=60s \
    crd/datapermits.haven.io crd/workspaces.haven.io crd/airlockrequests.haven.io >/dev/null
  kubectl create namespace haven-system >/dev/null
  data="$out/data"
  rm -rf "$data"
  mkdir -p "$data"
  start_operator 0
  "$bench" permits --count "$1" --data-root "$data" >>"$results"
  stop_operator
}

teardown_done=""
for spec in $sizes; do
  n="${spec%%:*}" reps="${spec##*:}"
  for rep in $(seq 1 "$reps"); do
    order="floor operator"
    [ $((rep % 2)) -eq 0 ] && order="operator floor"
    for mode in $order; do
      run="${mode:0:1}${n}r${rep}"
      say "N=$n repetition $rep: $mode"
      fresh_cluster "$n"
      if [ "$mode" = floor ]; then
        "$bench" provision --mode floor --count "$n" --run "$run" --rep "$rep" --data-root "$data" | record
      else
        start_operator "$n"
        "$bench" provision --mode operator --count "$n" --run "$run" --rep "$rep" --data-root "$data" \
          --operator-pid "$operator" --metrics "$metrics" | record
        if [ "$n" = "$idle_at" ] && [ "$rep" = "$reps" ]; then
          say "N=$n: writes while idle over $idle_window"
          "$bench" idle --metrics "$metrics" --count "$n" --window "$idle_window" | record
        fi
        stop_operator
      fi
    done
  done
  if [ -z "$teardown_done" ] && [ "$n" -ge "$teardown_n" ]; then
    say "teardown lag: $teardown_n workspaces expiring over $teardown_spread"
    fresh_cluster "$teardown_n"
    start_operator "$teardown_n"
    "$bench" teardown --count "$teardown_n" --run tl --spread "$teardown_spread" --lead "$teardown_lead" \
      --metrics "$metrics" | record
    stop_operator
    teardown_done=1
  fi
done
e2e/cluster.sh down 2>/dev/null

if [ "$serial_runs" -gt 0 ]; then
  say "one at a time: bench/workspace-ready.sh $serial_runs (its own cluster)"
  line=$(env -u KUBECONFIG bench/workspace-ready.sh "$serial_runs" 2>>"$out/cluster.log" | tail -1)
  python3 -c 'import json,sys; print(json.dumps({"figure": "serial", "text": sys.argv[1]}))' "$line" >>"$results"
fi

echo
"$bench" summarize "$results" | tee "$out/summary.md"
say "results: $results"
