"""Ingest throughput: epibridge against a bare DuckDB scan of the same national line list.

In one run, on one file written by ``benchmarks.generate_linelist``:

1. **baseline**: DuckDB ``read_csv`` (its sniffer types the columns) and
   ``GROUP BY province, week`` of onset: the least any tool must do to turn the file into
   weekly counts;
2. **floor**: one hand-written DuckDB query (``FLOOR_SQL``) that checks this profile's
   rules on values written the way this file writes them and counts accepted rows per
   province, disease and week, plus NumPy for repeated case ids: no trimming, no
   messages, nothing written. It is a lower bound on what any validating ingest of this
   file costs, and its counts are compared with epibridge's, cell by cell;
3. **epibridge**: ``epibridge.ingest.ingest`` with ``benchmarks/profiles/khm-linelist.toml``:
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


#: The floor: the least a validating ingest of this profile must compute, as one
#: hand-written DuckDB query. It reads every column the rules need, checks the rules on
#: values written the way this file writes them, and counts the accepted rows per
#: province, disease and ISO week. Code lists are ENUM casts, not joins or IN lists:
#: DuckDB runs those as hash joins, which give the rows back out of file order (and the
#: position of a row is its record number here). Left out, so that it is a lower bound:
#: trimming, the quarantine's messages and suggestions, lineage, and writing anything.
FLOOR_SQL = """
SELECT h, CASE WHEN NOT bad THEN (pi * {n_diseases} + di) * 100000
                               + date_diff('day', DATE '1990-01-01', d) // 7 END AS cell
FROM (
    SELECT hash(case_id) AS h, coalesce(o, r) AS d, pi, di,
           case_id IS NULL OR di IS NULL OR pi IS NULL OR r IS NULL
           OR (onset IS NOT NULL AND o IS NULL) OR r > DATE '{today}' OR o > DATE '{today}'
           OR o > r OR (sex IS NOT NULL AND TRY_CAST(sex AS floor_sex) IS NULL)
           OR (age IS NOT NULL AND (a IS NULL OR a < {min_age} OR a > {max_age})) AS bad
    FROM (
        SELECT case_id, onset, sex, age,
               CASE WHEN length(onset) = 10 THEN TRY_CAST(onset AS DATE) END AS o,
               CASE WHEN length(reported) = 10 THEN TRY_CAST(reported AS DATE) END AS r,
               TRY_CAST(age AS DOUBLE) AS a,
               enum_code(TRY_CAST(province AS floor_place))::INTEGER AS pi,
               enum_code(TRY_CAST(disease AS floor_disease))::INTEGER AS di
        FROM read_csv(?, header = true, auto_detect = false, columns = {columns})
    )
)
"""


def floor(path: str, today: str) -> Result:
    """The hand-written single pass (``FLOOR_SQL``) and NumPy for repeated case ids."""
    import duckdb
    import numpy as np
    import pyarrow.compute as pc

    from epibridge.pipeline.fields import code_maps
    from epibridge.profiles import load_profile
    from epibridge.registry import geography

    profile = load_profile(PROFILE)
    maps = code_maps(profile)
    diseases = sorted(maps["disease"])
    units = [u for u in geography.units(profile.country) if u.level == 1]
    spellings = {
        s: u.code
        for u in units
        for s in (u.name, u.name_local, *u.alt_names)
        if geography.resolve(profile.country, [s]) == u
    }
    places = sorted(spellings)

    def enum(values: list[str]) -> str:
        return "ENUM(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"

    con = duckdb.connect()
    con.execute(f"CREATE TYPE floor_place AS {enum(places)}")
    con.execute(f"CREATE TYPE floor_disease AS {enum(diseases)}")
    con.execute(f"CREATE TYPE floor_sex AS {enum(sorted(maps['sex']))}")
    header = ["case_id", "disease", "onset", "reported", "sex", "age", "province"]
    sql = FLOOR_SQL.format(
        n_diseases=len(diseases),
        today=today,
        min_age=profile.rules.get("min_age", 0),
        max_age=profile.rules.get("max_age", 120),
        columns="{" + ", ".join(f"'{c}': 'VARCHAR'" for c in header) + "}",
    )
    cpu = cpu_seconds()
    started = time.perf_counter()
    per_row = con.sql(sql, params=[path]).to_arrow_table()
    hashes = per_row.column("h").combine_chunks()
    cells = per_row.column("cell").to_numpy(zero_copy_only=False)
    # Repeated case ids: the hashes seen twice, then (for those rows only) every
    # occurrence after the first is dropped from the counts.
    ordered = np.sort(hashes.to_numpy())
    twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    rows = np.flatnonzero(pc.is_in(hashes, value_set=pc.cast(twice, hashes.type)))
    first = rows[np.unique(hashes.to_numpy()[rows], return_index=True)[1]]
    repeated = np.setdiff1d(rows, first)
    cells[repeated] = np.nan
    kept = cells[~np.isnan(cells)].astype(np.int64)
    keys, counts = np.unique(kept, return_counts=True)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    week0 = date(1990, 1, 1).toordinal()
    # Spellings of one province and codes of one disease fall into one cell.
    merged: dict[tuple[str, str, str], int] = {}
    for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
        place, disease = divmod(k // 100000, len(diseases))
        week = date.fromordinal(week0 + 7 * (k % 100000)).isoformat()
        key = (spellings[places[place]], maps["disease"][diseases[disease]], week)
        merged[key] = merged.get(key, 0) + n
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": per_row.num_rows,
        "accepted": int(counts.sum()),
        "quarantined": per_row.num_rows - int(counts.sum()),
        "cells": len(merged),
        "counts": {"|".join(k): n for k, n in sorted(merged.items())},
        "peak_rss": peak_rss(),
    }


def written_counts(counts: Path) -> dict[str, int]:
    """epibridge's ``counts.parquet`` keyed as the floor keys its cells."""
    import pyarrow.parquet as pq

    table = pq.read_table(counts, columns=["area", "disease", "period_start", "cases"])
    return {
        f"{r['area']}|{r['disease']}|{r['period_start'].isoformat()}": int(r["cases"])
        for r in table.to_pylist()
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


def table(rows: int, base: Result, low: Result, epi: Result, size: int, same: bool) -> str:
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
        f"| floor: one hand-written validating pass, nothing written | {low['seconds']:.2f} s | "
        f"{low['cpu_seconds']:.2f} s | {rows / low['seconds']:,.0f} | {gb(low['peak_rss'])} | "
        f"{low['accepted']:,} accepted, {low['quarantined']:,} not, {low['cells']:,} cells |",
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
        f"The floor's ratio: {base['seconds'] / low['seconds']:.3f} in wall time, "
        f"{base['cpu_seconds'] / low['cpu_seconds']:.3f} in CPU time; its counts "
        f"{'equal' if same else 'DIFFER FROM'} epibridge's `counts.parquet`, cell by cell.",
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
    print("floor: one hand-written validating pass ...", flush=True)
    low = measure(floor, str(data), RUN_DAY.isoformat())
    print(f"  {low['seconds']:.2f} s", flush=True)
    print("epibridge: ingest ...", flush=True)
    target = out / "ingest"
    epi = measure(epibridge, str(data), str(target), RUN_DAY.isoformat())
    print(f"  {epi['seconds']:.2f} s", flush=True)
    check = planted_check(truth, target / "quarantine.csv")
    same = low.pop("counts") == written_counts(target / "counts.parquet")
    report = table(epi["rows"], base, low, epi, size, same)
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
        "floor": low,
        "floor_counts_equal": same,
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
