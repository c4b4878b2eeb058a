"""Outbreak detection against R ``surveillance`` on the same series, in the same run.

140 district-like weekly series of 480 weeks (seasonal Poisson counts with district
sizes drawn from a gamma distribution, like the ``fluBYBW`` data the reference timing
used), the last 217 weeks monitored. Timed, each in a fresh process:

* epibridge: ``farrington_flexible`` (original and Noufaily presets) and EARS C1/C2/C3,
  all series at once;
* R 4 ``surveillance`` (when ``Rscript`` and the package are installed:
  ``apt-get install r-cran-surveillance``): ``farringtonFlexible`` with the same
  controls on the same counts, timed with ``system.time`` around the call only.

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
from typing import Any, Literal

import numpy as np

from benchmarks.common import DOCS, OUT, machine, update_docs

MARKERS = ("<!-- detect:start -->", "<!-- detect:end -->")
WEEKS = 480  # Noufaily's b = 5 years + w weeks of history before the 217 monitored
MONITORED = 217

R_SCRIPT = r"""
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.csv(args[1], check.names = FALSE))
preset <- args[2]
first <- as.integer(args[3])
s <- sts(observed = counts, frequency = 52, start = c(2001, 1))
control <- if (preset == "farrington") {
  list(b = 3, w = 3, noPeriods = 1, weightsThreshold = 1, pastWeeksNotIncluded = 3,
       thresholdMethod = "delta", powertrans = "2/3", alpha = 0.05,
       range = first:nrow(counts))
} else {
  list(b = 5, w = 3, noPeriods = 10, weightsThreshold = 2.58, pastWeeksNotIncluded = 26,
       thresholdMethod = "nbPlugin", powertrans = "none", alpha = 0.05,
       range = first:nrow(counts))
}
elapsed <- system.time(res <- farringtonFlexible(s, control = control))[["elapsed"]]
write.csv(upperbound(res), args[4], row.names = FALSE)
write.csv(alarms(res) * 1, args[5], row.names = FALSE)
cat(elapsed, "\n")
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


def _ours(counts: np.ndarray) -> dict[str, Any]:
    from epibridge.algorithms.ears import ears
    from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY, farrington_flexible

    first = WEEKS - MONITORED
    out: dict[str, Any] = {}
    for name, preset in (("farrington", FARRINGTON), ("noufaily", NOUFAILY)):
        began = time.perf_counter()
        result = farrington_flexible(counts, preset, start=first)
        out[name] = {
            "seconds": time.perf_counter() - began,
            "upper": result.upperbound[:, first:],
            "alarm": result.alarm[:, first:],
        }
    kinds: tuple[Literal["C1", "C2", "C3"], ...] = ("C1", "C2", "C3")
    for kind in kinds:
        began = time.perf_counter()
        ears(counts, kind, start=first)
        out[f"ears-{kind.lower()}"] = {"seconds": time.perf_counter() - began}
    return out


def _r(counts: np.ndarray, work: Path, preset: str) -> dict[str, Any] | None:
    if shutil.which("Rscript") is None:
        return None
    script, data = work / "run.R", work / "counts.csv"
    script.write_text(R_SCRIPT, encoding="utf-8")
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"s{i}" for i in range(counts.shape[0])])
        writer.writerows(counts.T.astype(int).tolist())
    upper, alarm = work / f"upper-{preset}.csv", work / f"alarm-{preset}.csv"
    done = subprocess.run(
        [
            "Rscript",
            str(script),
            str(data),
            preset,
            str(WEEKS - MONITORED + 1),
            str(upper),
            str(alarm),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=140)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=OUT)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    work: Path = args.out_dir / "detect"
    work.mkdir(parents=True, exist_ok=True)
    counts = _data(args.series, args.seed)
    points = args.series * MONITORED
    ours = _ours(counts)
    lines = [
        f"{args.series} weekly series of {WEEKS} weeks, the last {MONITORED} monitored "
        f"({points:,} series-weeks); seasonal Poisson counts, a third with planted outbreaks.",
        "",
        "| detector | epibridge | points/s | R surveillance | R points/s | speed-up "
        "| same bounds and alarms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    result: dict[str, Any] = {"points": points}
    for name in ("farrington", "noufaily"):
        mine = ours[name]
        theirs = _r(counts, work, name)
        row = f"| {name} | {mine['seconds']:.2f} s | {points / mine['seconds']:,.0f} |"
        if theirs is None:
            row += " not installed | | | |"
        else:
            same_upper = np.allclose(mine["upper"], theirs["upper"], rtol=1e-4, equal_nan=True)
            same_alarm = np.array_equal(
                mine["alarm"].astype(float), np.nan_to_num(theirs["alarm"], nan=0.0)
            )
            row += (
                f" {theirs['seconds']:.1f} s | {points / theirs['seconds']:,.0f} | "
                f"{theirs['seconds'] / mine['seconds']:,.0f}x | "
                f"{'yes' if same_upper and same_alarm else 'NO'} |"
            )
            result[f"{name}_r_seconds"] = theirs["seconds"]
            result[f"{name}_same"] = bool(same_upper and same_alarm)
        result[f"{name}_seconds"] = mine["seconds"]
        lines.append(row)
    for name in ("ears-c1", "ears-c2", "ears-c3"):
        seconds = ours[name]["seconds"]
        lines.append(f"| {name} | {seconds * 1000:.1f} ms | {points / seconds:,.0f} | | | | |")
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        update_docs(text, machine(), DOCS, MARKERS, "## Outbreak detection against R surveillance")
    return result


if __name__ == "__main__":
    main()
