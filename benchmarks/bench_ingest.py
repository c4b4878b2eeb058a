"""Ingest throughput: epibridge against a bare DuckDB scan of the same national line list.

In one run, on one file written by ``benchmarks.generate_linelist``:

1. **baseline**: DuckDB ``read_csv`` (its sniffer types the columns) and
   ``GROUP BY province, week`` of onset: the least any tool must do to turn the file into
   weekly counts;
2. **epibridge**: ``epibridge.ingest.ingest`` with ``benchmarks/profiles/khm-linelist.toml``:
   read, validate (every rule), harmonize (registry codes, places, ISO weeks), quarantine,
   aggregate to weekly counts and write ``cases.parquet``, ``counts.parquet``,
   ``quarantine.csv`` and ``summary.json``.

Each stage runs in its own freshly spawned process, so that its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss`` at the end of the child) is its own; imports happen
before the clock starts. The throughput ratio is ``baseline_time / epibridge_time`` (the
issue asks for at least 0.5) and peak memory must stay under 3 GB.

    uv run python -m benchmarks.bench_ingest                 # 10 million rows, updates docs
    uv run python -m benchmarks.bench_ingest --keep          # reuse benchmarks/out/*.csv
    uv run python -m benchmarks.bench_ingest --rows 2000 --no-docs

Nothing here asserts on time: the figures are reported, and written to
``docs/benchmarks.md`` between the ``results`` markers.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import time
from datetime import date
from pathlib import Path

from benchmarks.common import (
    DOCS,
    OUT,
    ROOT,
    Result,
    gb,
    machine,
    measure,
    peak_rss,
    steps_line,
    update_docs,
)

PROFILE = ROOT / "benchmarks" / "profiles" / "khm-linelist.toml"
TARGET_RATIO = 0.5
MEMORY_LIMIT = 3 * 1024**3

BASELINE_SQL = """
SELECT province, date_trunc('week', TRY_CAST(onset AS DATE)) AS week, count(*) AS cases
FROM read_csv(?, header = true)
GROUP BY province, week
"""


def cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads (DuckDB's included).

    The machine is shared: wall times of the same run vary by a factor of two with the
    load of other processes, CPU times by a few per cent, so both are reported.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(path: str) -> Result:
    """Bare DuckDB: read the CSV with the sniffer and count cases per province and week."""
    import duckdb

    con = duckdb.connect()
    cpu = cpu_seconds()
    started = time.perf_counter()
    counts = con.sql(BASELINE_SQL, params=[path]).to_arrow_table()
    seconds = time.perf_counter() - started
    rows = int(sum(counts.column("cases").to_pylist()))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
        "rows": rows,
        "cells": counts.num_rows,
        "peak_rss": peak_rss(),
    }


def epibridge(path: str, out: str, today: str) -> Result:
    """The full ingest of ``path`` into ``out``, with the time of each step."""
    from epibridge.ingest import ingest
    from epibridge.profiles import load_profile

    profile = load_profile(PROFILE)
    steps: list[tuple[str, float]] = []
    cpu = cpu_seconds()
    started = time.perf_counter()

    def step(message: str, done: float | None) -> None:
        if not steps or steps[-1][0] != message:
            steps.append((message, time.perf_counter() - started))

    result = ingest(profile, [Path(path)], Path(out), date.fromisoformat(today), progress=step)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    marks = [*steps, ("done", seconds)]
    timings = {
        name.split(" ")[0]: round(marks[i + 1][1] - at, 3)
        for i, (name, at) in enumerate(marks[:-1])
    }
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": result.read,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "by_rule": result.by_rule(),
        "cells": result.totals.get("counts_cells", 0),
        "steps": timings,
        "peak_rss": peak_rss(),
    }


def planted_check(truth: Path, quarantine: Path) -> dict[str, int]:
    """How many planted bad rows were quarantined, and under the planted rule."""
    with truth.open(newline="") as f:
        planted = {int(r["record"]): r["rule"] for r in csv.DictReader(f)}
    with quarantine.open(newline="") as f:
        found = {int(r["record"]): r["rule"] for r in csv.DictReader(f)}
    return {
        "planted": len(planted),
        "quarantined": sum(1 for r in planted if r in found),
        "same_rule": sum(1 for r, rule in planted.items() if found.get(r) == rule),
    }


def table(rows: int, base: Result, epi: Result, size: int) -> str:
    """The results as a Markdown table."""
    ratio = base["seconds"] / epi["seconds"]
    cpu_ratio = base["cpu_seconds"] / epi["cpu_seconds"]
    lines = [
        f"File: {rows:,} rows, {size / 1e6:,.0f} MB of CSV.",
        "",
        "| stage | wall time | CPU time | rows/s | peak RSS | output |",
        "|---|---:|---:|---:|---:|---|",
        f"| DuckDB `read_csv` + `GROUP BY` (baseline) | {base['seconds']:.2f} s | "
        f"{base['cpu_seconds']:.2f} s | {rows / base['seconds']:,.0f} | "
        f"{gb(base['peak_rss'])} | {base['cells']:,} province-weeks |",
        f"| epibridge `ingest` | {epi['seconds']:.2f} s | {epi['cpu_seconds']:.2f} s | "
        f"{rows / epi['seconds']:,.0f} | {gb(epi['peak_rss'])} | {epi['accepted']:,} "
        f"accepted, {epi['quarantined']:,} quarantined, {epi['cells']:,} count cells |",
        "",
        f"Throughput ratio (baseline time / epibridge time): **{ratio:.3f}** "
        f"(target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'}); "
        f"in CPU time {cpu_ratio:.3f}. "
        f"Peak memory: {gb(max(base['peak_rss'], epi['peak_rss']))} (limit 3 GB: "
        f"{'met' if max(base['peak_rss'], epi['peak_rss']) < MEMORY_LIMIT else 'NOT met'}).",
        "",
        steps_line(epi["steps"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", action="store_true", help="reuse the generated file in --out-dir if it is there"
    )
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument(
        "--no-docs", action="store_true", help=f"do not update {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from benchmarks.generate_linelist import RUN_DAY, generate

    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"khm-linelist-{args.rows}-s{args.seed}.csv"
    truth = data.with_suffix(".truth.csv")
    if not (args.keep and data.exists() and truth.exists()):
        print(f"generating {args.rows:,} rows -> {data}")
        generate(args.rows, data, args.seed, truth)
    size = data.stat().st_size
    print("baseline: DuckDB read_csv + GROUP BY ...", flush=True)
    base = measure(baseline, str(data))
    print(f"  {base['seconds']:.2f} s", flush=True)
    print("epibridge: ingest ...", flush=True)
    target = out / "ingest"
    epi = measure(epibridge, str(data), str(target), RUN_DAY.isoformat())
    print(f"  {epi['seconds']:.2f} s", flush=True)
    check = planted_check(truth, target / "quarantine.csv")
    report = table(epi["rows"], base, epi, size)
    print()
    print(report)
    print(
        f"\nplanted bad rows: {check['planted']:,}, quarantined: {check['quarantined']:,}, "
        f"under the planted rule: {check['same_rule']:,}"
    )
    info = machine()
    figures: Result = {
        "rows": epi["rows"],
        "file_bytes": size,
        "baseline": base,
        "epibridge": epi,
        "ratio": base["seconds"] / epi["seconds"],
        "cpu_ratio": base["cpu_seconds"] / epi["cpu_seconds"],
        "planted": check,
        "machine": info,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if not args.no_docs:
        update_docs(report, info)
        print(f"updated {DOCS}")
    return figures


if __name__ == "__main__":
    main()
