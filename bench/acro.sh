#!/usr/bin/env bash
# `make bench-acro`: Haven's table checks beside ACRO 1.0.2's, cell by cell, on the same
# seeded microdata (bench/acro_compare.py; SEEDS seeds, two tables each: counts and sums).
# ACRO is installed once from PyPI into ~/.cache/haven/acro-1.0.2.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${SEEDS:-40}"
cache="${HAVEN_CACHE:-$HOME/.cache/haven}"
venv="$cache/acro-1.0.2"
if [ ! -x "$venv/bin/python" ]; then
  echo "[bench] installing acro 1.0.2 into $venv (once)" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet acro==1.0.2
fi
cargo build --quiet --release --locked -p haven
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" bench/acro_compare.py "$target/haven" "$seeds" "$work" 2>/dev/null
