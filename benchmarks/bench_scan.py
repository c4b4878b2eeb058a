"""The space-time scans at the size the issue names: 1,000 areas x 52 weeks, 999 replicates.

A synthetic map of 1,000 areas (a 40 x 25 grid, 0.2 degrees apart, two countries) with a
fixed random population and 52 weeks of Poisson counts (about 3 cases per area and
week), a cluster planted on a border block in the last 2 weeks. Both scans run with
999 Monte Carlo replicates, windows of 1-4 weeks and zones of at most 5 % of the areas
(permutation) or of the population (Poisson), as a hub would run them weekly. The
baseline in the same run is one evaluation of every cylinder on the observed data
(what a scan without any Monte Carlo costs). Target (issue 6): under 60 s each.

With ``--spark MASTER`` both scans also run with their replicates on Spark (one task per
block of replicates, ``engines.block_map``), after an untimed run that starts the
executors; the results must be identical to the ones computed here.

    uv run python -m benchmarks.bench_scan             # updates docs/benchmarks.md
    uv run python -m benchmarks.bench_scan --spark 'local[2]'
    uv run python -m benchmarks.bench_scan --spark cluster --no-docs   # 2 workers, here
    uv run python -m benchmarks.bench_scan --areas 100 --no-docs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import DOCS, machine, update_docs

MARKERS = ("<!-- scan:start -->", "<!-- scan:end -->")
WEEKS = 52


def _map(n_areas: int, rng: np.random.Generator) -> tuple[Any, np.ndarray, np.ndarray]:
    from epibridge.algorithms.scan import ScanAreas

    cols = 40 if n_areas >= 400 else 10
    rows = -(-n_areas // cols)
    cells = [(r, c) for r in range(rows) for c in range(cols)][:n_areas]
    lon = np.array([100.0 + 0.2 * c for _, c in cells])
    lat = np.array([10.0 + 0.2 * r for r, _ in cells])
    countries = ["AAA" if c < cols // 2 else "BBB" for _, c in cells]
    codes = [f"A{i:04d}" for i in range(n_areas)]
    population = rng.integers(20_000, 200_000, n_areas).astype(float)
    mean = 3.0 * population / population.mean()
    counts = rng.poisson(np.repeat(mean[:, None], WEEKS, axis=1)).astype(float)
    middle = [
        i
        for i, (r, c) in enumerate(cells)
        if abs(r - rows // 2) <= 1 and c in (cols // 2 - 1, cols // 2)
    ]
    counts[middle, -2:] += rng.poisson(4.0 * mean[middle][:, None], (len(middle), 2))
    return ScanAreas.of(codes, countries, lon, lat), population, counts


@contextmanager
def _master(name: str) -> Iterator[str]:
    """``name``, or for ``cluster`` the URL of a standalone master with two one-core
    workers started on this machine for the run (``tests/spark_cluster.py``)."""
    if name != "cluster":
        yield name
        return
    from tests.spark_cluster import standalone

    with tempfile.TemporaryDirectory() as work, standalone(2, Path(work)) as cluster:
        yield cluster.master_url


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from epibridge.algorithms.scan import (
        candidate_zones,
        llr_high,
        poisson_scan,
        replicate_blocks,
        space_time_permutation_scan,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=1000)
    parser.add_argument("--replicates", type=int, default=999)
    parser.add_argument(
        "--spark",
        default=None,
        metavar="MASTER",
        help="also the scans on Spark: a master URL (local[2]), or 'cluster' for a standalone "
        "master and two one-core workers started on this machine",
    )
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(1)
    areas, population, counts = _map(args.areas, rng)

    began = time.perf_counter()
    zones = candidate_zones(areas, 0.05)
    zone_seconds = time.perf_counter() - began
    began = time.perf_counter()
    total = counts.sum()
    recent = np.cumsum(counts[:, ::-1], axis=1)[:, :4]
    member = zones.members.astype(np.float64)
    observed = member @ recent
    expected = (
        np.outer(member @ counts.sum(axis=1), np.cumsum(counts.sum(axis=0)[::-1])[:4]) / total
    )
    llr_high(observed, expected, total).max()
    one_pass = time.perf_counter() - began

    def describe(result: Any) -> str:
        top = result.most_likely
        if top is None:
            return "none"
        return f"{len(top.areas)} areas, p = {top.p_value:.4f}, cross-border = {top.cross_border}"

    def scans(map_blocks: Any = None) -> tuple[Any, float, Any, float]:
        began = time.perf_counter()
        perm = space_time_permutation_scan(
            counts,
            areas,
            np.random.default_rng(2),
            max_weeks=4,
            replicates=args.replicates,
            zones=zones,
            map_blocks=map_blocks,
        )
        perm_seconds = time.perf_counter() - began
        began = time.perf_counter()
        pois = poisson_scan(
            counts,
            population,
            areas,
            np.random.default_rng(3),
            max_weeks=4,
            max_share=0.05,
            replicates=args.replicates,
            map_blocks=map_blocks,
        )
        return perm, perm_seconds, pois, time.perf_counter() - began

    perm, perm_seconds, pois, pois_seconds = scans()
    blocks = len(replicate_blocks(args.replicates, len(zones.members), 4))
    spark_rows: list[str] = []
    spark_seconds: dict[str, float] = {}
    if args.spark:
        from epibridge.engines import block_map, spark_session

        with _master(args.spark) as master, spark_session(master) as spark:
            run = block_map("spark", spark)
            scans(run)  # untimed: starts the executors' Python workers
            s_perm, spark_seconds["permutation"], s_pois, spark_seconds["poisson"] = scans(run)
        for here, there in ((perm, s_perm), (pois, s_pois)):
            if not (
                np.array_equal(here.null_max_llr, there.null_max_llr)
                and here.clusters == there.clusters
            ):
                raise SystemExit(f"the {here.model} scan differs on Spark {args.spark}")
        spark_rows = [
            f"| space-time permutation scan on Spark {args.spark} | "
            f"{spark_seconds['permutation']:.1f} | {describe(s_perm)} (identical) |",
            f"| Poisson scan on Spark {args.spark} | {spark_seconds['poisson']:.1f} | "
            f"{describe(s_pois)} (identical) |",
        ]

    text = "\n".join(
        [
            f"{args.areas:,} areas x {WEEKS} weeks, {len(zones.members):,} candidate zones "
            f"(built in {zone_seconds:.2f} s), windows 1-4 weeks, {args.replicates} replicates "
            f"(the permutation scan's in {blocks} blocks).",
            "",
            "| stage | seconds | most likely cluster |",
            "|---|---:|---|",
            f"| baseline: every cylinder evaluated once, no Monte Carlo | {one_pass:.3f} | |",
            f"| space-time permutation scan | {perm_seconds:.1f} | {describe(perm)} |",
            f"| Poisson scan with population | {pois_seconds:.1f} | {describe(pois)} |",
            *spark_rows,
            "",
            "Target: under 60 s each: "
            + ("met." if max(perm_seconds, pois_seconds) < 60 else "NOT met."),
        ]
    )
    print(text)
    if not args.no_docs:
        update_docs(text, machine(), DOCS, MARKERS, "## Space-time scans at regional size")
    return {
        "permutation": perm_seconds,
        "poisson": pois_seconds,
        "zones": len(zones.members),
        "blocks": blocks,
        **{f"spark_{k}": v for k, v in spark_seconds.items()},
    }


if __name__ == "__main__":
    main()
