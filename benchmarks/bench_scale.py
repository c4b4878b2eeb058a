"""Issue 8's scale benchmark: the same pipeline on DuckDB and on Spark.

Two measurements, each on three engines in the same run: DuckDB in this process, Spark
``local[2]``, and a Spark standalone cluster of two one-core workers started on this
machine with the launcher that ships with PySpark (``tests/spark_cluster.py``).

1. **Ingest**: a synthetic national line list (``generate_linelist``, default 100,000,000
   rows) read, validated, harmonized and aggregated to weekly counts. The baseline is a
   bare DuckDB ``read_csv`` + ``GROUP BY`` of the same file, in the same run.
2. **Detection**: ``--series`` weekly series (default 200,000) over five years, seasonal
   Poisson counts; Farrington (flexible) over the last ``--monitor`` weeks of each
   series. Throughput is series-weeks (points) per second.

Each stage runs in a fresh process. Wall time is measured in that process; peak memory
is the largest resident set of the whole process tree (the Python process, Spark's JVM
and its Python workers, and on the cluster the master, workers and executors), sampled
every 0.2 s: ``ru_maxrss`` would see the Python process only.

    uv run python -m benchmarks.bench_scale                       # the issue's sizes
    uv run python -m benchmarks.bench_scale --rows 1_000_000 --series 5_000 --no-docs
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.common import OUT, ROOT, Result, gb, machine, publish

PROFILE = ROOT / "benchmarks" / "profiles" / "khm-linelist.toml"
ENGINES = ("duckdb", "local[2]", "cluster")
MARKERS = ("<!-- scale:start -->", "<!-- scale:end -->")
YEARS = 5
WEEKS = 52 * YEARS + 1


class TreeMemory:
    """The peak total resident memory of the process trees under ``roots`` (sampled)."""

    def __init__(self, roots: Callable[[], list[int]]) -> None:
        self.roots = roots
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _total(self) -> int:
        seen: set[int] = set()
        total = 0
        for pid in self.roots():
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in tree:
                if proc.pid in seen:
                    continue
                seen.add(proc.pid)
                with suppress(psutil.Error):
                    total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._total())


def _child(target: Callable[..., Result], args: tuple[Any, ...], queue: Any) -> None:
    try:
        queue.put(("ok", target(*args)))
    except BaseException as exc:  # reported by the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def measured(
    target: Callable[..., Result], *args: Any, cluster_pids: tuple[int, ...] = ()
) -> Result:
    """``target(*args)`` in a fresh process, with the peak memory of its tree (and of the
    cluster's processes, whose executors are not its children)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    with TreeMemory(lambda: [p for p in (proc.pid, *cluster_pids) if p]) as memory:
        status, value = queue.get()
        proc.join()
    if status != "ok":
        raise RuntimeError(f"{target.__name__} failed: {value}")
    return {**value, "peak_tree": memory.peak}


@contextmanager
def _session(master: str | None) -> Iterator[Any]:
    if master is None:
        yield None
        return
    from epibridge.engines import spark_session

    with spark_session(master) as spark:
        yield spark


def ingest_run(path: str, out: str, today: str, master: str | None) -> Result:
    """The full ingest of ``path`` into ``out``: on DuckDB (``master`` None) or Spark."""
    from epibridge.ingest import ingest
    from epibridge.profiles import load_profile

    with _session(master) as spark:
        started = time.perf_counter()
        result = ingest(
            load_profile(PROFILE),
            [Path(path)],
            Path(out),
            date.fromisoformat(today),
            engine="duckdb" if spark is None else "spark",
            spark=spark,
        )
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": result.read,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "cells": result.totals.get("counts_cells", 0),
        "counts_cases": result.totals.get("counts_cases", 0),
    }


def baseline_run(path: str) -> Result:
    """Bare DuckDB: read the CSV and count cases per province and week."""
    from benchmarks.bench_ingest import baseline

    return baseline(path)


def series(n: int, seed: int = 8) -> np.ndarray:
    """``n`` weekly series of seasonal Poisson counts over five years (float64)."""
    rng = np.random.default_rng(seed)
    t = np.arange(WEEKS)
    level = rng.uniform(1, 30, size=(n, 1))
    season = 1 + 0.5 * np.sin(2 * np.pi * t / 52.18 + rng.uniform(0, 2 * np.pi, size=(n, 1)))
    counts = rng.poisson(level * season).astype(np.float64)
    counts[::50, -4:] += 40  # an outbreak in every 50th series, at the end
    return counts


def detect_run(n: int, monitor: int, master: str | None) -> Result:
    """Farrington over the last ``monitor`` weeks of ``n`` series, on DuckDB's side (this
    process) or Spark."""
    from epibridge.algorithms.farrington import FARRINGTON
    from epibridge.detect_kernels import farrington_kernel
    from epibridge.engines import by_series

    observed = series(n)
    kernel = farrington_kernel(FARRINGTON, None, WEEKS - monitor)
    with _session(master) as spark:
        started = time.perf_counter()
        out = by_series(
            kernel, observed, engine="duckdb" if spark is None else "spark", spark=spark
        )
        seconds = time.perf_counter() - started
    points = n * monitor
    return {
        "seconds": seconds,
        "points": points,
        "points_per_second": points / seconds,
        "alarms": int(np.nansum(out.alarm[:, -monitor:])),
        "digest": float(np.nansum(out.upperbound[:, -monitor:])),
    }


@contextmanager
def _engine(name: str, work: Path) -> Iterator[tuple[str | None, list[int]]]:
    """The master URL for ``name`` and the pids of its cluster's processes."""
    if name == "duckdb":
        yield None, []
    elif name == "local[2]":
        yield "local[2]", []
    else:
        sys.path.insert(0, str(ROOT))
        from tests.spark_cluster import standalone

        with standalone(2, work) as cluster:
            yield cluster.master_url, [cluster.master.pid, *(w.pid for w in cluster.workers)]


def report(
    ingest: dict[str, Result], base: Result, detect: dict[str, Result], args: Any, size: int
) -> str:
    rows = base["rows"]
    lines = [
        f"Line list: {rows:,} rows ({size / 1e9:.1f} GB of CSV). Series: "
        f"{args.series:,} weekly series of {WEEKS} weeks, Farrington over the last "
        f"{args.monitor} weeks ({args.series * args.monitor:,} points).",
        "",
        "| stage | engine | wall time | rows or points / s | peak memory (process tree) |",
        "|---|---|---:|---:|---:|",
        f"| baseline: DuckDB `read_csv` + `GROUP BY` | DuckDB | {base['seconds']:,.1f} s | "
        f"{rows / base['seconds']:,.0f} | {gb(base['peak_tree'])} |",
    ]
    for name, got in ingest.items():
        lines.append(
            f"| ingest (validate, harmonize, aggregate) | {name} | {got['seconds']:,.1f} s | "
            f"{got['rows'] / got['seconds']:,.0f} | {gb(got['peak_tree'])} |"
        )
    for name, got in detect.items():
        lines.append(
            f"| Farrington | {name} | {got['seconds']:,.1f} s | "
            f"{got['points_per_second']:,.0f} | {gb(got['peak_tree'])} |"
        )
    same_ingest = len({(g["accepted"], g["quarantined"], g["cells"]) for g in ingest.values()})
    same_detect = len({(g["alarms"], round(g["digest"], 6)) for g in detect.values()})
    lines += [
        "",
        "Same accepted, quarantined and count cells on every engine: "
        f"{'yes' if same_ingest == 1 else 'NO'}; same alarms and bounds: "
        f"{'yes' if same_detect == 1 else 'NO'}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    number = lambda s: int(s.replace("_", ""))  # noqa: E731
    parser.add_argument("--rows", type=number, default=100_000_000)
    parser.add_argument("--series", type=number, default=200_000)
    parser.add_argument(
        "--monitor", type=int, default=100, help="weeks monitored per series (at most 102)"
    )
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--keep", action="store_true", help="reuse a generated file")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from benchmarks.generate_linelist import RUN_DAY, generate

    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"khm-linelist-{args.rows}-s{args.seed}.csv"
    if not (args.keep and data.exists()):
        print(f"generating {args.rows:,} rows -> {data}", flush=True)
        generate(args.rows, data, args.seed, None)
    print("baseline: DuckDB read_csv + GROUP BY ...", flush=True)
    base = measured(baseline_run, str(data))
    print(f"  {base['seconds']:.1f} s", flush=True)
    ingested: dict[str, Result] = {}
    detected: dict[str, Result] = {}
    for name in args.engines:
        work = out / f"scale-{name.replace('[', '').replace(']', '')}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        with _engine(name, work) as (master, pids):
            print(f"{name}: ingest ...", flush=True)
            ingested[name] = measured(
                ingest_run, str(data), str(work / "ingest"), RUN_DAY.isoformat(), master,
                cluster_pids=tuple(pids),
            )  # fmt: skip
            print(f"  {ingested[name]['seconds']:.1f} s", flush=True)
            print(f"{name}: Farrington ...", flush=True)
            detected[name] = measured(
                detect_run, args.series, args.monitor, master, cluster_pids=tuple(pids)
            )
            print(f"  {detected[name]['seconds']:.1f} s", flush=True)
        shutil.rmtree(work / "ingest", ignore_errors=True)
    text = report(ingested, base, detected, args, data.stat().st_size)
    print()
    print(text)
    info = machine()
    import pyspark

    info["python"] += f", PySpark {pyspark.__version__}, Java {_java()}"
    figures: Result = {
        "rows": args.rows,
        "series": args.series,
        "monitor": args.monitor,
        "baseline": base,
        "ingest": ingested,
        "detect": detected,
        "machine": info,
    }
    return publish(
        figures, text, args.json, not args.no_docs, MARKERS, "## Scale: DuckDB and Spark"
    )


def _java() -> str:
    import subprocess

    try:
        done = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return "unknown"
    first = (done.stderr or done.stdout).splitlines()
    return first[0].split('"')[1] if first and '"' in first[0] else "unknown"


if __name__ == "__main__":
    main()
