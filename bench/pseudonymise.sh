#!/usr/bin/env bash
# `make bench-pseudo`: dataset preparation throughput and memory, side by side in one run on
# the same synthetic registry (ROWS rows, about 1 GB at the default):
#   haven pseudonymise  — bench/pseudonymise-spec.yaml (2 HMAC, 2 dates, truncate, band, k report)
#   qsv pseudo          — one column replaced by a counter (qsvlite, built once into ~/.cache/haven)
#   pandas + hmac       — bench/pseudonymise_pandas.py, the same rules as haven
# Each tool runs REPS times, interleaved; the table shows medians and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${ROWS:-7000000}"
reps="${REPS:-3}"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}"
work="$cache/bench"
qsv_version=16.1.0
mkdir -p "$work"
say() { echo "[bench] $*" >&2; }

cargo build --quiet --release --locked -p haven -p haven-data --example synthetic_registry
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
input="$work/registry-$rows.csv"
if [ ! -f "$input" ]; then
  say "generating $rows synthetic rows into $input"
  "$target/examples/synthetic_registry" "$rows" "$input.tmp" && mv "$input.tmp" "$input"
fi
[ -f "$work/key" ] || head -c 32 /dev/urandom > "$work/key"
qsv="$cache/qsv-$qsv_version/bin/qsvlite"
if [ ! -x "$qsv" ]; then
  # `cargo install qsv` fails from crates.io: its `json` command calls a method that only its
  # git fork of json-objects-to-csv has. Fetch the published crate, drop that one call (the
  # `pseudo` command measured here is untouched) and build the lite binary once.
  say "building qsvlite $qsv_version once (a few minutes)"
  fetch="$work/qsv-fetch"
  mkdir -p "$fetch/src" && : > "$fetch/src/lib.rs"
  printf '[package]\nname = "qsv-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nqsv = { version = "=%s", default-features = false }\n' \
    "$qsv_version" > "$fetch/Cargo.toml"
  (cd "$fetch" && cargo fetch --quiet)
  crate=$(ls "$HOME"/.cargo/registry/cache/*/qsv-"$qsv_version".crate | head -1)
  rm -rf "$work/qsv-src" && mkdir -p "$work/qsv-src"
  tar -xzf "$crate" -C "$work/qsv-src" --strip-components=1
  sed -i '/\.preserve_key_order(true)/d' "$work/qsv-src/src/cmd/json.rs"
  cargo install --quiet --locked --path "$work/qsv-src" --no-default-features --features lite --bin qsvlite \
    --root "$cache/qsv-$qsv_version"
fi
venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  say "installing pandas into $venv (once)"
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet pandas
fi

bytes=$(stat -c %s "$input")
say "input: $rows rows, $((bytes / 1024 / 1024)) MiB"
declare -A runs=(
  [haven]="$target/haven pseudonymise --spec bench/pseudonymise-spec.yaml --key-file $work/key --report $work/haven-report.json $input $work/out-haven.csv"
  [qsv]="$qsv pseudo nhs_number $input --output $work/out-qsv.csv"
  [pandas]="$venv/bin/python bench/pseudonymise_pandas.py $work/key $input $work/out-pandas.csv"
)
results="$work/results.tsv"
: > "$results"
for rep in $(seq 1 "$reps"); do
  for tool in haven qsv pandas; do
    say "run $rep/$reps: $tool"
    /usr/bin/time -f "%e %M" -o "$work/time" ${runs[$tool]} > /dev/null 2> "$work/$tool.err" || { cat "$work/$tool.err" >&2; exit 1; }
    read -r seconds kib < "$work/time"
    printf '%s\t%s\t%s\n' "$tool" "$seconds" "$kib" >> "$results"
  done
done
python3 - "$results" "$rows" "$bytes" <<'PY'
import statistics, sys
rows, size = int(sys.argv[2]), int(sys.argv[3])
runs = {}
for line in open(sys.argv[1]):
    tool, seconds, kib = line.split()
    runs.setdefault(tool, []).append((float(seconds), int(kib)))
base = statistics.median(s for s, _ in runs["haven"])
print(f"| tool | median wall | rows/s | MB/s | peak RSS | vs haven |")
print(f"|---|---|---|---|---|---|")
for tool, samples in runs.items():
    wall = statistics.median(s for s, _ in samples)
    peak = max(k for _, k in samples) / 1024
    print(f"| {tool} | {wall:.1f} s | {rows / wall:,.0f} | {size / wall / 1e6:.0f} | {peak:.0f} MiB | {wall / base:.1f}x |")
PY
