"""Planted-cluster experiments for the prospective space-time scans (not a test).

A synthetic map of two countries: an 8 x 8 grid of areas 0.5 degrees apart near 10 N,
100 E, the four western columns in country AAA and the four eastern ones in BBB, with a
fixed random population (20,000-200,000 per area) and 16 weeks of Poisson counts whose
means are proportional to the population, 4 cases per area and week on average. A
cluster is planted on the 2 x 2 block of areas straddling the border in the middle of
the map: in the last 2 weeks their expected counts are multiplied by the relative risk
RR.

Each run scans the data with both models (999 Monte Carlo replicates, windows of 1-4
weeks ending at week 16, zones of at most 15 % of the areas for the space-time
permutation scan and 15 % of the population for the Poisson scan) and records whether
the most likely cluster is significant (p < 0.05), whether it touches the planted block
(detected), whether it is flagged cross-border, and which share of the planted block it
covers (recall) and of its own areas are planted (precision). Under the null (RR = 1) a
significant most likely cluster is a false alarm.

    uv run python -m benchmarks.scan_experiments                 # 100 runs per RR, 200 null
    uv run python -m benchmarks.scan_experiments --runs 20 --null-runs 40

The table is printed and written to ``benchmarks/out/scan-experiments.md``; copy it into
``docs/algorithms/scan.md`` by hand.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from itertools import product
from typing import Any

import numpy as np

from benchmarks.common import OUT
from epibridge.algorithms.scan import (
    ScanAreas,
    ScanResult,
    candidate_zones,
    poisson_scan,
    space_time_permutation_scan,
)

SIDE = 8
WEEKS = 16
MAX_WEEKS = 4
MAX_SHARE = 0.15
OUTBREAK_WEEKS = 2
CASES_PER_AREA_WEEK = 4.0
PLANTED = (3 * SIDE + 3, 3 * SIDE + 4, 4 * SIDE + 3, 4 * SIDE + 4)  # across the border

Scan = Callable[[np.ndarray, np.random.Generator], ScanResult]


def grid() -> ScanAreas:
    codes, countries, lon, lat = [], [], [], []
    for row, col in product(range(SIDE), range(SIDE)):
        codes.append(f"{'A' if col < SIDE // 2 else 'B'}{row}{col}")
        countries.append("AAA" if col < SIDE // 2 else "BBB")
        lon.append(100.0 + 0.5 * col)
        lat.append(10.0 + 0.5 * row)
    return ScanAreas.of(codes, countries, lon, lat)


def simulate(pop: np.ndarray, rr: float, rng: np.random.Generator) -> np.ndarray:
    mean = np.repeat((CASES_PER_AREA_WEEK * pop / pop.mean())[:, None], WEEKS, axis=1)
    mean[list(PLANTED), -OUTBREAK_WEEKS:] *= rr
    return rng.poisson(mean)


def run(name: str, scan: Scan, pop: np.ndarray, rr: float, runs: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    significant = detected = flagged = 0
    recall: list[float] = []
    precision: list[float] = []
    started = time.perf_counter()
    for _ in range(runs):
        result = scan(simulate(pop, rr, rng), rng)
        top = result.most_likely
        if top is None or top.p_value >= 0.05:
            continue
        significant += 1
        hit = set(top.area_index) & set(PLANTED)
        if hit:
            detected += 1
            flagged += top.cross_border
            recall.append(len(hit) / len(PLANTED))
            precision.append(len(hit) / len(top.area_index))
    seconds = time.perf_counter() - started
    return {
        "rr": rr,
        "runs": runs,
        "significant": significant / runs,
        "detected": detected / runs,
        "flagged": flagged / runs,
        "recall": float(np.mean(recall)) if recall else float("nan"),
        "precision": float(np.mean(precision)) if precision else float("nan"),
        "seconds_per_scan": seconds / runs,
        "model": name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per relative risk")
    parser.add_argument("--null-runs", type=int, default=200, help="runs under the null")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    areas = grid()
    pop = np.random.default_rng(args.seed).integers(20_000, 200_001, size=SIDE * SIDE)
    pop = pop.astype(np.float64)
    zones = {
        "space-time permutation": candidate_zones(areas, MAX_SHARE),
        "Poisson": candidate_zones(areas, MAX_SHARE, weights=pop),
    }
    scans: dict[str, Scan] = {
        "space-time permutation": lambda y, g: space_time_permutation_scan(
            y, areas, g, max_weeks=MAX_WEEKS, zones=zones["space-time permutation"]
        ),
        "Poisson": lambda y, g: poisson_scan(
            y, pop, areas, g, max_weeks=MAX_WEEKS, zones=zones["Poisson"]
        ),
    }
    rows = []
    for name, scan in scans.items():
        for k, rr in enumerate((1.0, 1.5, 2.0, 3.0)):
            runs = args.null_runs if rr == 1.0 else args.runs
            row = run(name, scan, pop, rr, runs, args.seed + 100 * k + 1)
            rows.append(row)
            print(row, flush=True)

    lines = [
        f"Grid {SIDE} x {SIDE} areas (two countries), {WEEKS} weeks, planted 2 x 2 block "
        f"across the border in the last {OUTBREAK_WEEKS} weeks; 999 replicates; "
        f"windows 1-{MAX_WEEKS} weeks; zones <= {MAX_SHARE:.0%}; seed {args.seed}; "
        f"zones: {zones['space-time permutation'].members.shape[0]} (permutation), "
        f"{zones['Poisson'].members.shape[0]} (Poisson).",
        "",
        "| model | RR | runs | p < 0.05 | detected (touches planted) | flagged cross-border "
        "| recall | precision | s / scan |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['rr']:.1f} | {r['runs']} | {r['significant']:.2f} "
            f"| {r['detected']:.2f} | {r['flagged']:.2f} | {r['recall']:.2f} "
            f"| {r['precision']:.2f} | {r['seconds_per_scan']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scan-experiments.md").write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
