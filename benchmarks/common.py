"""What every benchmark script shares: a fresh process per measured stage, the machine's
description, and writing results between markers in ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DOCS = ROOT / "docs" / "benchmarks.md"

Result = dict[str, Any]


def peak_rss() -> int:
    """Peak resident memory of this process in bytes (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _child(target: Callable[..., Result], args: tuple[Any, ...], queue: Any) -> None:
    try:
        queue.put(("ok", target(*args)))
    except BaseException as exc:  # reported by the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def measure(target: Callable[..., Result], *args: Any) -> Result:
    """Run ``target(*args)`` in a fresh process and return what it reports."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{target.__name__} failed: {value}")
    return dict(value)


def machine() -> dict[str, str]:
    """CPU, cores, memory and the versions that matter for the figures."""
    import duckdb
    import ibis
    import pyarrow

    cpu = platform.processor() or platform.machine()
    meminfo = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        pass
    ram = next(
        (
            int(line.split()[1]) * 1024
            for line in meminfo.splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{ram / 1024**3:.0f} GB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "ibis": ibis.__version__,
        "pyarrow": pyarrow.__version__,
        "date": date.today().isoformat(),
    }


def gb(n: int) -> str:
    return f"{n / 1024**3:.2f} GB"


def steps_line(steps: dict[str, float]) -> str:
    return "epibridge steps (seconds): " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()) + "."


def update_docs(
    text: str,
    info: dict[str, str],
    docs: Path = DOCS,
    markers: tuple[str, str] = ("<!-- results:start -->", "<!-- results:end -->"),
    section: str = "## Ingest throughput",
) -> None:
    """Replace the results between ``markers`` in ``docs`` (appending the section if absent)."""
    start, end = markers
    block = "\n".join(
        [
            start,
            f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
            f"{info['os']}; Python {info['python']}, DuckDB {info['duckdb']}, Ibis "
            f"{info['ibis']}, PyArrow {info['pyarrow']}.",
            "",
            text,
            end,
        ]
    )
    current = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    if start not in current or end not in current:
        current = current.rstrip("\n") + f"\n\n{section}\n\n### Results\n\n{start}\n{end}\n"
    head, _, rest = current.partition(start)
    _, _, tail = rest.partition(end)
    docs.write_text(head + block + tail, encoding="utf-8")


def publish(
    figures: Result,
    text: str,
    json_path: Path | None,
    docs: bool,
    markers: tuple[str, str],
    section: str,
) -> Result:
    """Write ``figures`` to ``json_path`` (if given) and ``text`` between ``markers`` in
    docs/benchmarks.md (if ``docs``); return ``figures``."""
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if docs:
        update_docs(text, figures["machine"], DOCS, markers, section)
        print(f"updated {DOCS}")
    return figures
