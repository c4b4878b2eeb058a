"""Protect a national release: epibridge's protect stage against a bare aggregation.

The issue's release: 5,000 areas x 52 weeks x 10 diseases x 2 sexes x 8 age bands of
harmonized counts (``counts.parquet`` as ``epibridge ingest`` writes it, generated here
with Poisson counts whose rates vary by disease, area, season and stratum, so that most
cells are small, as in real district-level surveillance). In one run:

1. **baseline**: DuckDB reads the Parquet file and sums cases per area, week, disease,
   sex and age band: the bare aggregation with no protection;
2. **epibridge**: ``epibridge.protect.protect`` with ``benchmarks/agreements/bench-counts.toml``
   (k = 5, zeros shown): generalization, aggregation to blocks, threshold rule with
   complementary suppression over every block and its margins, the Parquet release, the
   policy receipt and the transfer register.

Each runs in a fresh process; wall time and peak resident memory are its own. The target
is under 2 minutes for epibridge on this machine. No test asserts on time.

    uv run python -m benchmarks.bench_protect                     # full size, updates docs
    uv run python -m benchmarks.bench_protect --areas 50 --no-docs
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import (
    OUT,
    ROOT,
    Result,
    gb,
    machine,
    measure,
    peak_rss,
    publish,
    steps_line,
)

AGREEMENT = ROOT / "benchmarks" / "agreements" / "bench-counts.toml"
MARKERS = ("<!-- protect:start -->", "<!-- protect:end -->")
TARGET_SECONDS = 120.0
WEEKS = 52
SEXES = ("M", "F")
BANDS = ("0-4", "5-14", "15-24", "25-34", "35-44", "45-54", "55-64", "65+")
FIRST_WEEK = date(2024, 12, 30)  # ISO 2025-W01
RUN_DAY = date(2026, 6, 30)

BASELINE_SQL = """
SELECT area, period_start, disease, sex, age_band, sum(cases) AS cases
FROM read_parquet(?)
GROUP BY ALL
"""


def diseases() -> list[str]:
    """The ten regional disease codes the benchmark agreement covers."""
    from epibridge.agreements import load_agreement

    return list(load_agreement(AGREEMENT).diseases)


def generate(areas: int, path: Path, seed: int = 1) -> int:
    """Write the synthetic counts; returns the number of rows (non-zero cells)."""
    rng = np.random.default_rng(seed)
    codes = diseases()
    n_d, n_s, n_a = len(codes), len(SEXES), len(BANDS)
    disease_rate = rng.gamma(1.0, 0.6, n_d)
    area_rate = rng.lognormal(0.0, 0.8, areas)
    season = 1 + 0.6 * np.sin(np.linspace(0, 2 * np.pi, WEEKS, endpoint=False))
    strata = np.outer([1.0, 0.9], [0.6, 1.2, 1.4, 1.2, 1.0, 0.8, 0.6, 0.5]).ravel()
    rows = 0
    with pq.ParquetWriter(path, _schema()) as writer:
        for lo in range(0, areas, 250):
            hi = min(areas, lo + 250)
            lam = (
                area_rate[lo:hi, None, None, None]
                * season[None, :, None, None]
                * disease_rate[None, None, :, None]
                * strata[None, None, None, :]
                * 0.25
            )
            counts = rng.poisson(lam)
            a, w, d, s = np.nonzero(counts)
            rows += len(a)
            writer.write_table(_rows(lo + a, w, d, s, counts[a, w, d, s], codes, n_a))
    del n_s
    return rows


def _schema() -> pa.Schema:
    from epibridge.model.schema import COUNTS

    return COUNTS


def _rows(
    area: np.ndarray,
    week: np.ndarray,
    disease: np.ndarray,
    stratum: np.ndarray,
    cases: np.ndarray,
    codes: list[str],
    n_bands: int,
) -> pa.Table:
    from epibridge.model.schema import COUNTS

    n = len(area)
    area_codes = pa.array([f"KH-X{i:04d}" for i in range(area.max() + 1)] if n else [], pa.string())
    province = pa.array(
        [f"KH-{1 + i % 25}" for i in range(area.max() + 1)] if n else [], pa.string()
    )
    starts = [FIRST_WEEK + timedelta(weeks=i) for i in range(WEEKS)]
    labels = pa.array(
        [f"{(s + timedelta(days=3)).isocalendar()[0]}-W{i + 1:02d}" for i, s in enumerate(starts)]
    )
    cols = {
        "country": pa.array(["KHM"] * n, pa.string()),
        "admin1": province.take(pa.array(area)),
        "admin2": area_codes.take(pa.array(area)),
        "admin3": pa.nulls(n, pa.string()),
        "area": area_codes.take(pa.array(area)),
        "area_level": pa.array(np.full(n, 2, dtype=np.int8)),
        "disease": pa.array(codes, pa.string()).take(pa.array(disease)),
        "period": labels.take(pa.array(week)),
        "period_type": pa.array(["week"] * n, pa.string()),
        "calendar": pa.array(["iso"] * n, pa.string()),
        "period_start": pa.array(starts, pa.date32()).take(pa.array(week)),
        "period_end": pa.array([s + timedelta(days=6) for s in starts], pa.date32()).take(
            pa.array(week)
        ),
        "age_band": pa.array(BANDS, pa.string()).take(pa.array(stratum % n_bands)),
        "sex": pa.array(SEXES, pa.string()).take(pa.array(stratum // n_bands)),
        "cases": pa.array(cases.astype(np.int64)),
        "deaths": pa.nulls(n, pa.int64()),
        "source_file": pa.array(["synthetic.csv"] * n, pa.string()),
        "source_record": pa.array(np.arange(1, n + 1, dtype=np.int64)),
    }
    return pa.Table.from_pydict(cols, schema=COUNTS)


def baseline(path: str) -> Result:
    import duckdb

    con = duckdb.connect()
    started = time.perf_counter()
    cells = con.sql(BASELINE_SQL, params=[path]).to_arrow_table()
    seconds = time.perf_counter() - started
    total = int(sum(cells.column("cases").to_pylist()))
    return {"seconds": seconds, "cells": cells.num_rows, "cases": total, "peak_rss": peak_rss()}


def epibridge(in_dir: str, out: str, home: str) -> Result:
    import ibis

    from epibridge.agreements import load_agreement
    from epibridge.protect import protect

    agreement = load_agreement(AGREEMENT)
    # Load the engine before the clock starts (its first connection imports pandas).
    ibis.duckdb.connect().to_pyarrow(ibis.memtable({"a": [1]}))
    steps: dict[str, float] = {}
    clock = {"": time.perf_counter()}

    def progress(step: str, done: float | None) -> None:
        (current, since), now = next(iter(clock.items())), time.perf_counter()
        if step != current:
            if current:
                steps[current] = steps.get(current, 0.0) + now - since
            clock.clear()
            clock[step] = now

    started = time.perf_counter()
    result = protect(
        agreement,
        Path(in_dir),
        Path(out),
        Path(home),
        RUN_DAY,
        datetime.now(UTC),
        progress=progress,
    )
    seconds = time.perf_counter() - started
    (current, since), now = next(iter(clock.items())), time.perf_counter()
    steps[current] = steps.get(current, 0.0) + now - since
    counts = result.receipt["datasets"]["counts"]
    return {
        "seconds": seconds,
        "blocks": counts["blocks"],
        "rows": counts["rows"],
        "primary": counts["suppression"]["primary"],
        "secondary": counts["suppression"]["secondary"],
        "steps": steps,
        "peak_rss": peak_rss(),
    }


def report(areas: int, rows: int, base: Result, epi: Result) -> str:
    cells = areas * WEEKS * len(diseases()) * len(SEXES) * len(BANDS)
    met = "met" if epi["seconds"] < TARGET_SECONDS else "NOT met"
    lines = [
        f"Release: {areas:,} areas x {WEEKS} weeks x 10 diseases x 2 sexes x 8 age bands = "
        f"{cells:,} cells, {rows:,} of them non-zero (the input rows).",
        "",
        "| stage | wall time | peak RSS | output |",
        "|---|---:|---:|---|",
        f"| DuckDB `read_parquet` + `GROUP BY` (baseline) | {base['seconds']:.2f} s | "
        f"{gb(base['peak_rss'])} | {base['cells']:,} cells |",
        f"| epibridge `protect` (k = 5, complementary suppression) | {epi['seconds']:.2f} s | "
        f"{gb(epi['peak_rss'])} | {epi['blocks']:,} blocks, {epi['rows']:,} released entries, "
        f"{epi['primary']:,} primary + {epi['secondary']:,} complementary suppressions |",
        "",
        f"Time ratio (epibridge / baseline): {epi['seconds'] / base['seconds']:.1f}. "
        f"Target: under {TARGET_SECONDS:.0f} s: **{met}**.",
        "",
        steps_line(epi["steps"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="reuse the generated input")
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    work: Path = args.out_dir / f"protect-{args.areas}-s{args.seed}"
    in_dir = work / "ingested"
    data = in_dir / "counts.parquet"
    meta = work / "rows.txt"
    if not (args.keep and data.exists() and meta.exists()):
        in_dir.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.areas:,} areas of counts -> {data}", flush=True)
        meta.write_text(str(generate(args.areas, data, args.seed)))
    rows = int(meta.read_text())
    for old in (work / "release", work / "home"):
        shutil.rmtree(old, ignore_errors=True)
    print("baseline: DuckDB read_parquet + GROUP BY ...", flush=True)
    base = measure(baseline, str(data))
    print(f"  {base['seconds']:.2f} s", flush=True)
    print("epibridge: protect ...", flush=True)
    epi = measure(epibridge, str(in_dir), str(work / "release"), str(work / "home"))
    print(f"  {epi['seconds']:.2f} s", flush=True)
    text = report(args.areas, rows, base, epi)
    print()
    print(text)
    info = machine()
    figures: Result = {
        "areas": args.areas,
        "rows": rows,
        "baseline": base,
        "epibridge": epi,
        "machine": info,
    }
    return publish(
        figures, text, args.json, not args.no_docs, MARKERS, "## Protecting a national release"
    )


if __name__ == "__main__":
    main()
