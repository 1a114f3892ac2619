"""Haven's table checks against ACRO's, cell by cell, on the same microdata.

For each seed: random microdata (categories A and B, a value v with occasional dominant
contributors, negatives and empty cells). ACRO 1.0.2 tabulates it (counts, and sums of v) and
judges every cell; the same cells go to `haven airlock check` as tidy tables (count; count,
total, top1, top2, min). Each cell's set of failed rules is compared, in ACRO's names.

Usage: acro_compare.py HAVEN_BINARY SEEDS WORKDIR
"""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from acro import ACRO

# ACRO 1.0.2's check names and Haven's, for the rules both have, compared in short names.
ACRO_RULES = {
    "MinimumThresholdCheck": "threshold",
    "PresenceOfZeroCheck": "zeros",
    "NKCheck": "nk-rule",
    "PPercentCheck": "p-ratio",
}
HAVEN_RULES = {"threshold": "threshold", "zeros": "zeros", "dominance": "nk-rule", "p-ratio": "p-ratio", "negative": "negative"}


def microdata(rng):
    a_levels = [f"a{i}" for i in range(rng.integers(2, 5))]
    b_levels = [f"b{i}" for i in range(rng.integers(2, 4))]
    n = int(rng.integers(20, 400))
    df = pd.DataFrame(
        {
            "A": rng.choice(a_levels, n, p=rng.dirichlet(np.ones(len(a_levels)))),
            "B": rng.choice(b_levels, n, p=rng.dirichlet(np.ones(len(b_levels)))),
            "v": rng.exponential(100.0, n).round(2),
        }
    )
    # A dominant contributor in some cells, a negative now and then.
    for _ in range(int(rng.integers(0, 3))):
        df.loc[int(rng.integers(0, n)), "v"] = float(rng.uniform(2_000, 50_000))
    if rng.random() < 0.2:
        df.loc[int(rng.integers(0, n)), "v"] = -50.0
    return df, a_levels, b_levels


def acro_cells(acro, df, values):
    if values:
        acro.crosstab(df.A, df.B, values=df.v, aggfunc="sum")
    else:
        acro.crosstab(df.A, df.B)
    outcome = list(acro.results.results.values())[-1].outcome
    cells = {}
    for a in outcome.index:
        for b in outcome.columns:
            words = {w.strip() for w in str(outcome.loc[a, b]).split(";") if w.strip() and w.strip() != "ok"}
            cells[(str(a), str(b))] = {ACRO_RULES[w] for w in words if w in ACRO_RULES}
    return cells


def haven_cells(haven, df, a_levels, b_levels, values, path):
    rows = []
    for a in a_levels:
        for b in b_levels:
            cell = df[(df.A == a) & (df.B == b)].v.sort_values(ascending=False)
            row = {"A": a, "B": b, "count": len(cell)}
            if values:
                top = list(cell) + [0.0, 0.0]
                row.update(total=round(cell.sum(), 2), top1=top[0], top2=top[1], min=cell.min() if len(cell) else 0.0)
            rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    report = json.loads(subprocess.run([haven, "airlock", "check", str(path)], capture_output=True, text=True).stdout)
    sdc = report["results"]["output_0"]["files"][0]["sdc"]["cells"]
    cells = {(r["A"], r["B"]): set() for r in rows}
    for check, positions in sdc.items():
        if check in HAVEN_RULES:
            for row, _ in positions:
                cells[(rows[row]["A"], rows[row]["B"])].add(HAVEN_RULES[check])
    return cells


def main():
    haven, seeds, work = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    acro = ACRO(suppress=False)
    agree, total, tables = 0, 0, 0
    differ = Counter()
    examples = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        df, a_levels, b_levels = microdata(rng)
        for values in (False, True):
            theirs = acro_cells(acro, df, values)
            ours = haven_cells(haven, df, a_levels, b_levels, values, work / f"t{seed}-{int(values)}.csv")
            tables += 1
            for cell, expected in theirs.items():
                # ACRO leaves out empty rows and columns; Haven is given every combination.
                got = ours.get(cell)
                if got is None:
                    continue
                total += 1
                if got == expected:
                    agree += 1
                else:
                    kind = f"{'sums' if values else 'counts'}: acro {sorted(expected)} haven {sorted(got)}"
                    differ[kind] += 1
                    examples.setdefault(kind, f"seed {seed} cell {cell}")
    print(f"{tables} tables, {total} cells: {agree} agree ({100 * agree / max(total, 1):.1f}%)")
    for kind, count in differ.most_common():
        print(f"  {count:5d}  {kind}  (e.g. {examples[kind]})")


if __name__ == "__main__":
    main()
