"""Outbreak detection over time in what the hub holds: one series per country and area.

The regional weekly counts of one disease (``regional.counts_as_of``: every country's
released cells) become one series per (country, area), over the consecutive ISO weeks
from the first week the hub holds for the disease to the last. A week's count is the
area's total cell where one was sent, else the sum of its sex and age strata (as
``signals.py`` and ``pipeline.aggregate.total_cases`` count). The detectors of
``epibridge detect`` (``algorithms/``, the method names of ``cli_detect``, each method's
presets and defaults as they are there) then monitor the last ``weeks`` weeks of every
series at once, dated weekly epochs for Farrington and Noufaily.

**Missing is not zero.** A week with no cell for an area, a withheld cell
(``cases_suppressed``: 1 to k-1 cases hidden by disclosure control), and a week whose
strata include a withheld one (the sum would only be a lower bound) are NA, never 0:
zeros would drag the baselines down and raise alarms the data do not support. The
detectors treat NA as R's ``surveillance`` does (docs/algorithms/):

* ``farrington`` / ``noufaily``: NA weeks are left out of the baseline; an NA current
  week has no bound and no alarm; and because ``limit54`` (5 cases in 4 weeks) sums the
  4 weeks ending at the current one, an NA in them leaves the week without bound or
  alarm too (R's sum with NA);
* ``ears-c1|c2|c3``: an NA in the baseline window (the 7 weeks before, C2 and C3 after a
  2-week guard band) leaves the week without bound or alarm;
* ``cusum``: an NA week is undefined and the sum carries over; the in-control mean is
  that of the counts present before the monitored weeks;
* ``glrnb``: NA weeks are left out of the in-control fit and of the chart's sums.

So a withheld cell can hide an alarm for a few weeks; it can never raise one.

A retired area's weeks count for the unit that holds it on the last week (the registry's
crosswalk: Viet Nam's 2025 merger of 63 provinces into 34), so a merged province keeps its
history.

Series without enough history before the monitored weeks for the chosen method (counted
from the first week the series has a cell) are not run; they are listed with the reason.
Monthly (and other non-weekly) cells are not mixed in, nor weeks of another calendar than
ISO (Monday) weeks: such series are listed as skipped, and a disease held only in
monthly counts gives an empty result that says so.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from typing import Any, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from epibridge.detect_kernels import (
    Kernel,
    cusum_kernel,
    ears_kernel,
    farrington_kernel,
    glrnb_kernel,
)
from epibridge.detection import EARS, Method
from epibridge.engines import Engine, by_series
from epibridge.hub.area_counts import AreaCount, area_counts, on_current_units
from epibridge.model.errors import EpibridgeError
from epibridge.registry.calendars import canonical_system

METHODS: tuple[str, ...] = get_args(Method)
#: Weeks of in-control history CUSUM needs before the monitored weeks: one year, where
#: ``epibridge detect`` starts it by default (``--from`` defaults to ``--freq``).
CUSUM_HISTORY = 52

Series = tuple[str, str]  # (country, area)

DETECTION = pa.schema(
    [
        pa.field("country", pa.string()),
        pa.field("area", pa.string()),
        pa.field("disease", pa.string()),
        pa.field("week_start", pa.date32()),
        pa.field("period", pa.string()),
        pa.field("observed", pa.int64()),
        pa.field("expected", pa.float64()),
        pa.field("upperbound", pa.float64()),
        pa.field("alarm", pa.bool_()),
        pa.field("pvalue", pa.float64()),
    ],
    metadata={"name": "regional_detection", "version": "1"},
)


class TemporalError(EpibridgeError):
    """Nothing to monitor (no counts of the disease), or a method or parameter that does
    not fit."""

    exit_code = 1


@dataclass(frozen=True)
class SkippedSeries:
    """A (country, area) series that was not monitored, and why."""

    country: str
    area: str
    reason: str


@dataclass(frozen=True)
class RegionalDetection:
    """The monitored points (``DETECTION``: one row per series and monitored week, null
    where the detector gives no value), the series left out, and a ``note`` when the
    disease has no weekly counts at all."""

    disease: str
    method: str
    points: pa.Table
    weeks: tuple[date, ...]  # the first day of each monitored week
    series: int  # series monitored
    skipped: tuple[SkippedSeries, ...]
    note: str | None = None

    @property
    def alarms(self) -> pa.Table:
        """The monitored points that raised an alarm."""
        return self.points.filter(pc.equal(self.points.column("alarm"), True))


def _week_label(start: date) -> str:
    year, week, _ = start.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _is_iso(calendar: str | None, start: date) -> bool:
    try:
        iso = canonical_system(calendar or "") == "iso"
    except ValueError:
        return False
    return iso and start.weekday() == 0


def _weekly_counts(
    counts: list[AreaCount],
) -> tuple[dict[Series, dict[date, float]], dict[Series, str]]:
    """Whole counts per series and ISO week (NaN = NA: withheld in whole or in part), and
    the series held only in another calendar's weeks (with that calendar)."""
    weekly: dict[Series, dict[date, float]] = defaultdict(dict)
    other: dict[Series, str] = {}
    for c in counts:
        key = (c.country, c.area)
        if not _is_iso(c.calendar, c.period_start):
            other.setdefault(key, str(c.calendar))
            continue
        weekly[key][c.period_start] = np.nan if c.cases is None else float(c.cases)
    return dict(weekly), {k: v for k, v in other.items() if k not in weekly}


def _signature_default(function: Callable[..., Any], name: str) -> Any:
    return inspect.signature(function).parameters[name].default


def _keywords(function: Callable[..., Any], fixed: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in inspect.signature(function).parameters if n not in fixed)


def _checked(method: str, params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TemporalError(
            f"{method} takes no parameter {', '.join(unknown)}; it takes {', '.join(allowed)}"
        )


class _Detector:
    """One method of ``epibridge detect``: the history a series needs and the run."""

    def __init__(self, method: str, params: Mapping[str, Any]) -> None:
        if method not in METHODS:
            raise TemporalError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        self.method = method
        self.params = dict(params)
        if method in ("farrington", "noufaily"):
            from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY

            preset = FARRINGTON if method == "farrington" else NOUFAILY
            _checked(method, self.params, tuple(f.name for f in fields(preset)))
            self.control = replace(preset, **self.params)
        elif method in EARS:
            from epibridge.algorithms.ears import ears

            _checked(method, self.params, _keywords(ears, ("observed", "method", "start")))
        elif method == "cusum":
            from epibridge.algorithms.cusum import cusum

            _checked(method, self.params, _keywords(cusum, ("observed", "start")))
        else:
            from epibridge.algorithms.glrnb import glrnb

            _checked(method, self.params, _keywords(glrnb, ("observed", "start", "cases")))

    def enough_history(self, first: int, start: int, days: NDArray[np.datetime64]) -> bool:
        """Whether a series whose first cell is at column ``first`` has the history the
        method needs before column ``start``."""
        if self.method in ("farrington", "noufaily"):
            from epibridge.algorithms.farrington import first_feasible

            if len(days) - first < 2:
                return False
            found = first_feasible(self.control, len(days) - first, days[first:])
            return found is not None and first + found <= start
        return start - first >= self.history_weeks()

    def history_weeks(self) -> int:
        """Weeks of history before the monitored ones (all methods but Farrington's)."""
        if self.method in EARS:
            from epibridge.algorithms.ears import ears, first_monitored

            baseline = self.params.get("baseline", _signature_default(ears, "baseline"))
            return first_monitored(EARS[self.method], int(baseline))
        if self.method == "cusum":
            return CUSUM_HISTORY
        from epibridge.algorithms.glrnb import glrnb

        return int(self.params.get("period", _signature_default(glrnb, "period")))

    def needs(self) -> str:
        """The history the method needs, in words."""
        if self.method in ("farrington", "noufaily"):
            c = self.control
            return f"{c.b} years and {c.w} weeks of counts"
        return f"{self.history_weeks()} weeks of counts"

    def kernel(self, start: int, days: NDArray[Any]) -> Kernel:
        """The method as a function of a block of series (``detect_kernels``)."""
        if self.method in ("farrington", "noufaily"):
            return farrington_kernel(self.control, days, start)
        if self.method in EARS:
            return ears_kernel(EARS[self.method], start=start, **self.params)
        if self.method == "cusum":
            return cusum_kernel(start=start, **self.params)
        return glrnb_kernel(start=start, **self.params)


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass(frozen=True)
class DetectionInput:
    """The series of one disease ready for a detector, or (``done``) the answer when
    there is nothing to run: no series with enough history, no ISO weeks."""

    disease: str
    method: str
    done: RegionalDetection | None
    detector: _Detector | None = None
    run: tuple[Series, ...] = ()
    observed: np.ndarray | None = None
    week_starts: tuple[date, ...] = ()
    start: int = 0
    skipped: tuple[SkippedSeries, ...] = ()


def regional_detect(
    cells: pa.Table,
    disease: str,
    *,
    method: str = "noufaily",
    weeks: int = 8,
    params: Mapping[str, Any] | None = None,
    engine: Engine = "duckdb",
    spark: Any = None,
) -> RegionalDetection:
    """Monitor the last ``weeks`` weeks of every (country, area) series of ``disease`` in
    ``cells`` (``regional.COUNTS_AS_OF``) with ``method``; ``params`` replace entries of
    the method's preset (Farrington: ``FarringtonControl`` fields) or defaults (others:
    the detector function's keyword arguments). ``engine`` ``spark`` runs the detector
    over partitions of the series on ``spark`` (``engines.spark_session``): same result.
    (:func:`detection_input`, then :func:`detect_of`.)"""
    prepared = detection_input(cells, disease, method=method, weeks=weeks, params=params)
    return detect_of(prepared, engine=engine, spark=spark)


def detection_input(
    cells: pa.Table,
    disease: str,
    *,
    method: str = "noufaily",
    weeks: int = 8,
    params: Mapping[str, Any] | None = None,
) -> DetectionInput:
    """The series :func:`regional_detect` monitors, checked (``TemporalError`` for what
    cannot be monitored at all) before any detector runs or a Spark session starts."""
    detector = _Detector(method, params or {})
    if weeks < 1:
        raise TemporalError(f"weeks must be 1 or more, got {weeks}")
    rows = [r for r in cells.to_pylist() if r["disease"] == disease]
    if not rows:
        raise TemporalError(
            f"the hub holds no counts of {disease}; 'epibridge hub counts' lists what it holds"
        )
    weekly = [r for r in rows if r["period_type"] == "week"]
    held = [c for c in area_counts(weekly) if c.period_type == "week"]
    if held:  # series keep their history across boundary changes (the registry's crosswalk)
        held = on_current_units(held, max(c.period_start for c in held))
    counts, other_calendar = _weekly_counts(held)
    skipped = [
        SkippedSeries(c, a, f"weeks of the {cal!r} calendar, not ISO weeks")
        for (c, a), cal in sorted(other_calendar.items())
    ]
    not_weekly: dict[Series, set[str]] = defaultdict(set)
    for r in rows:
        key = (r["country"], r["area"])
        if r["period_type"] != "week" and key not in counts and key not in other_calendar:
            not_weekly[key].add(r["period_type"])
    skipped += [
        SkippedSeries(c, a, f"only {', '.join(sorted(types))} counts (weekly detection)")
        for (c, a), types in sorted(not_weekly.items())
    ]
    if not counts:
        kinds = sorted({str(r["period_type"]) for r in rows if r["period_type"] != "week"})
        note = (
            f"the hub holds {disease} only as {', '.join(kinds)} counts; "
            "weekly detection does not mix them in"
            if kinds
            else f"the hub holds no ISO-week counts of {disease}"
        )
        empty = DETECTION.empty_table()
        done = RegionalDetection(disease, method, empty, (), 0, tuple(skipped), note)
        return DetectionInput(disease, method, done)

    first_week = min(min(by_week) for by_week in counts.values())
    last_week = max(max(by_week) for by_week in counts.values())
    n_time = (last_week - first_week).days // 7 + 1
    if weeks >= n_time:
        raise TemporalError(
            f"the hub holds {n_time} weeks of {disease} counts ({first_week} to {last_week}); "
            f"monitoring {weeks} of them leaves no history: ask for fewer weeks"
        )
    week_starts = [first_week + timedelta(weeks=i) for i in range(n_time)]
    days = np.array(week_starts, dtype="datetime64[D]")
    start = n_time - weeks
    run: list[Series] = []
    for key in sorted(counts):
        first = (min(counts[key]) - first_week).days // 7
        last = max(counts[key])
        if last < week_starts[start]:
            # nothing held in the monitored weeks: a detector has nothing to judge
            skipped.append(
                SkippedSeries(*key, f"no counts in the monitored weeks (the last is {last})")
            )
        elif detector.enough_history(first, start, days):
            run.append(key)
        else:
            skipped.append(
                SkippedSeries(
                    *key,
                    f"{method} needs {detector.needs()} before {week_starts[start]}; "
                    f"the series starts {week_starts[first]}",
                )
            )
    monitored = tuple(week_starts[start:])
    if not run:
        empty = RegionalDetection(
            disease, method, DETECTION.empty_table(), monitored, 0, tuple(skipped)
        )
        return DetectionInput(disease, method, empty)
    observed = np.full((len(run), n_time), np.nan)
    for i, key in enumerate(run):
        for week, value in counts[key].items():
            observed[i, (week - first_week).days // 7] = value
    return DetectionInput(
        disease,
        method,
        None,
        detector,
        tuple(run),
        observed,
        tuple(week_starts),
        start,
        tuple(skipped),
    )


def detect_of(
    prepared: DetectionInput, *, engine: Engine = "duckdb", spark: Any = None
) -> RegionalDetection:
    """Run the detector over ``prepared``'s series, here or on ``spark``."""
    if prepared.done is not None:
        return prepared.done
    assert prepared.detector is not None and prepared.observed is not None
    disease, method, run = prepared.disease, prepared.method, prepared.run
    week_starts, start, observed = prepared.week_starts, prepared.start, prepared.observed
    n_time = len(week_starts)
    days = np.array(week_starts, dtype="datetime64[D]")
    kernel = prepared.detector.kernel(start, days)
    out = by_series(kernel, observed, engine=engine, spark=spark)
    records = []
    for j in range(start, n_time):
        for i, (country, area) in enumerate(run):
            records.append(
                {
                    "country": country,
                    "area": area,
                    "disease": disease,
                    "week_start": week_starts[j],
                    "period": _week_label(week_starts[j]),
                    "observed": None if np.isnan(observed[i, j]) else int(observed[i, j]),
                    "expected": _value(out.expected[i, j]),
                    "upperbound": _value(out.upperbound[i, j]),
                    "alarm": bool(out.alarm[i, j]) if out.defined[i, j] else None,
                    "pvalue": None if out.pvalue is None else _value(out.pvalue[i, j]),
                }
            )
    points = pa.Table.from_pylist(records, DETECTION).sort_by(
        [("country", "ascending"), ("area", "ascending"), ("week_start", "ascending")]
    )
    monitored = tuple(week_starts[start:])
    return RegionalDetection(disease, method, points, monitored, len(run), prepared.skipped)
