"""Outbreak detection against R ``surveillance`` on the same series, in the same run.

140 district-like weekly series of 480 weeks (seasonal Poisson counts with district
sizes drawn from a gamma distribution, like the ``fluBYBW`` data the reference timing
used), the last 217 weeks monitored; by default R's own ``fluBYBW`` (weeks 200-416).
Timed:

* epibridge: ``farrington_flexible`` (original and Noufaily presets) and EARS C1/C2/C3,
  all series at once, in this process: one untimed warm-up call (it loads the compiled
  EARS kernel), then the best of ``--repeat`` calls;
* R 4 ``surveillance`` (when ``Rscript`` and the package are installed:
  ``apt-get install r-cran-surveillance``): ``farringtonFlexible`` or ``earsC`` with the
  same controls on the same counts, in one R session, timed with ``system.time`` around
  the call only: the best of ``--r-repeat`` calls for EARS (a fraction of a second each),
  one call for Farrington (minutes).

It also checks that both give the same upper bounds (1e-4 relative) and alarms, so the
speed is compared on identical results. No test asserts on time.

    uv run python -m benchmarks.bench_detect            # updates docs/benchmarks.md
    uv run python -m benchmarks.bench_detect --series 20 --no-docs
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import DOCS, OUT, machine, update_docs

MARKERS = ("<!-- detect:start -->", "<!-- detect:end -->")
WEEKS = 480  # Noufaily's b = 5 years + w weeks of history before the 217 monitored
MONITORED = 217

R_SCRIPT = r"""
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.csv(args[1], check.names = FALSE))
method <- args[2]
first <- as.integer(args[3])
s <- sts(observed = counts, frequency = 52, start = c(2001, 1))
range <- first:nrow(counts)
if (method == "farrington") {
  control <- list(b = 3, w = 3, noPeriods = 1, weightsThreshold = 1, pastWeeksNotIncluded = 3,
                  thresholdMethod = "delta", powertrans = "2/3", alpha = 0.05, range = range)
  elapsed <- system.time(res <- farringtonFlexible(s, control = control))[["elapsed"]]
} else if (method == "noufaily") {
  control <- list(b = 5, w = 3, noPeriods = 10, weightsThreshold = 2.58,
                  pastWeeksNotIncluded = 26, thresholdMethod = "nbPlugin", powertrans = "none",
                  alpha = 0.05, range = range)
  elapsed <- system.time(res <- farringtonFlexible(s, control = control))[["elapsed"]]
} else {
  elapsed <- Inf
  for (i in seq_len(as.integer(args[6]))) {
    took <- system.time(
      res <- earsC(s, control = list(method = method, range = range)))[["elapsed"]]
    elapsed <- min(elapsed, took)
  }
}
write.csv(upperbound(res), args[4], row.names = FALSE)
write.csv(alarms(res) * 1, args[5], row.names = FALSE)
cat(elapsed, "\n")
"""

FLU_R = r"""
suppressPackageStartupMessages(library(surveillance))
data(fluBYBW)
write.csv(observed(fluBYBW), commandArgs(trailingOnly = TRUE)[1], row.names = FALSE)
"""


def _data(n_series: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(WEEKS)
    season = np.exp(0.9 * np.cos(2 * np.pi * (t - 8) / 52))
    size = rng.gamma(2.0, 1.5, size=(n_series, 1))
    counts = rng.poisson(size * season).astype(float)
    outbreak = rng.integers(WEEKS - MONITORED, WEEKS - 4, size=n_series)
    for i, start in enumerate(outbreak[: n_series // 3]):
        counts[i, start : start + 3] += rng.poisson(6 * float(size[i, 0]) + 5, 3)
    return counts


def _ours(counts: np.ndarray, first: int, methods: list[str], repeat: int) -> dict[str, Any]:
    from epibridge.algorithms.ears import ears
    from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY, farrington_flexible

    def run(name: str) -> Any:
        if name in ("farrington", "noufaily"):
            preset = FARRINGTON if name == "farrington" else NOUFAILY
            return farrington_flexible(counts, preset, start=first)
        return ears(counts, name, start=first)  # type: ignore[arg-type]

    out: dict[str, Any] = {}
    for name in methods:
        began = time.perf_counter()
        r = run(name)  # warm-up: loads (or, once per installation, compiles) the kernel
        cold = time.perf_counter() - began
        best = float("inf")
        for _ in range(repeat):
            began = time.perf_counter()
            r = run(name)
            best = min(best, time.perf_counter() - began)
        out[name] = {
            "seconds": best,
            "first": cold,
            "upper": r.upperbound[:, first:],
            "alarm": r.alarm[:, first:],
        }
    return out


def _write_counts(counts: np.ndarray, path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"s{i}" for i in range(counts.shape[0])])
        writer.writerows(counts.T.astype(int).tolist())


def _r(
    counts: np.ndarray, first: int, work: Path, method: str, repeat: int
) -> dict[str, Any] | None:
    if shutil.which("Rscript") is None:
        return None
    script, data = work / "run.R", work / "counts.csv"
    script.write_text(R_SCRIPT, encoding="utf-8")
    _write_counts(counts, data)
    upper, alarm = work / f"upper-{method}.csv", work / f"alarm-{method}.csv"
    command = ["Rscript", str(script), str(data), method, str(first + 1), str(upper), str(alarm)]
    command.append(str(repeat))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"R failed: {done.stderr[-500:]}")
        return None

    def matrix(path: Path) -> np.ndarray:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))[1:]
        return np.array([[np.nan if v == "NA" else float(v) for v in r] for r in rows]).T

    return {
        "seconds": float(done.stdout.split()[-1]),
        "upper": matrix(upper),
        "alarm": matrix(alarm),
    }


def _flubybw(work: Path) -> np.ndarray | None:
    """R's fluBYBW counts (140 districts x 416 weeks), exported by R itself."""
    if shutil.which("Rscript") is None:
        return None
    script, data = work / "flu.R", work / "flubybw.csv"
    script.write_text(FLU_R, encoding="utf-8")
    done = subprocess.run(["Rscript", str(script), str(data)], capture_output=True, check=False)
    if done.returncode != 0:
        return None
    with data.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) for v in r] for r in rows]).T


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["flubybw", "synthetic"], default="flubybw")
    parser.add_argument("--series", type=int, default=140, help="synthetic series")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--methods", help="comma-separated subset, e.g. C1,C2,C3 (default: all for the data)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed epibridge calls (best)")
    parser.add_argument("--r-repeat", type=int, default=5, help="timed R earsC calls (best)")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = _parser()
    args = parser.parse_args(argv)
    work: Path = args.out_dir / "detect"
    work.mkdir(parents=True, exist_ok=True)
    counts = _flubybw(work) if args.data == "flubybw" else None
    if counts is not None:
        first = 199  # R's range 200:416 (1-based)
        described = (
            f"R's `fluBYBW` data (influenza, {counts.shape[0]} districts of Bavaria and "
            f"Baden-Wuerttemberg, {counts.shape[1]} weeks), weeks 200-416 monitored"
        )
        methods = ["farrington", "C1", "C2", "C3"]  # Noufaily's b = 5 needs 263 weeks back
    else:
        counts = _data(args.series, args.seed)
        first = WEEKS - MONITORED
        described = (
            f"{args.series} synthetic weekly series of {WEEKS} weeks (seasonal Poisson, a "
            f"third with planted outbreaks), the last {MONITORED} monitored"
        )
        methods = ["farrington", "noufaily", "C1", "C2", "C3"]
    if args.methods:
        wanted = args.methods.split(",")
        unknown = sorted(set(wanted) - set(methods))
        if unknown:
            parser.error(f"--methods: {', '.join(unknown)} not among {', '.join(methods)}")
        methods = [m for m in methods if m in wanted]
    points = counts.shape[0] * (counts.shape[1] - first)
    ours = _ours(counts, first, methods, max(1, args.repeat))
    lines = [
        f"{described}: {points:,} series-weeks.",
        "",
        f"epibridge: best of {max(1, args.repeat)} calls after an untimed first call "
        f"(shown: it loads the compiled EARS kernel); R: best of {max(1, args.r_repeat)} "
        "`earsC` calls, one `farringtonFlexible` call, in one R session.",
        "",
        "| detector | epibridge | first call | points/s | R surveillance | R points/s "
        "| speed-up | same bounds and alarms |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    result: dict[str, Any] = {"points": points, "data": args.data if first == 199 else "synthetic"}
    for name in methods:
        mine = ours[name]
        theirs = _r(counts, first, work, name, max(1, args.r_repeat))
        label = name if name in ("farrington", "noufaily") else f"ears-{name.lower()}"
        took = mine["seconds"]
        row = f"| {label} | {took:.3g} s | {mine['first']:.3g} s | {points / took:,.0f} |"
        if theirs is None:
            row += " not installed | | | |"
        else:
            same_upper = np.allclose(mine["upper"], theirs["upper"], rtol=1e-4, equal_nan=True)
            same_alarm = np.array_equal(
                mine["alarm"].astype(float), np.nan_to_num(theirs["alarm"], nan=0.0)
            )
            same = bool(same_upper and same_alarm)
            row += (
                f" {theirs['seconds']:.3g} s | {points / theirs['seconds']:,.0f} | "
                f"{theirs['seconds'] / took:,.0f}x | {'yes' if same else 'NO'} |"
            )
            result[f"{name}_r_seconds"] = theirs["seconds"]
            result[f"{name}_same"] = same
        result[f"{name}_seconds"] = took
        lines.append(row)
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        update_docs(text, machine(), DOCS, MARKERS, "## Outbreak detection against R surveillance")
    return result


if __name__ == "__main__":
    main()
