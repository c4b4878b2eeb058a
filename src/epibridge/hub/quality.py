"""Quality scorecards: how complete, timely, valid and consistent each country's data are.

Computed at the hub from what it holds at a moment (``as_of``), per country, disease and
reporting period (a week or a month, as each agreement releases):

* **completeness**: where the country sends its reports expected and received
  (``quality_reporting``), DHIS2's reporting rate: reports received over reports expected
  (``completeness_basis`` ``reports``), with the share of them on time. Otherwise the
  areas that reported a cell for the period over the areas expected (``areas``).
  Expected: the registry's units of the country at the released area level valid on the
  period's first day; for areas the registry does not hold, the areas the country ever
  reported at that level.
* **timeliness**: days from the end of the period to the first submission that brought it
  (``delay_days``); ``on_time`` when within the threshold (default 7 days).
* **duplicates**: cells sent twice in one submission, and cells sent again by a later
  submission that is not a revision (the later value wins in the regional picture, but
  the repetition says something about the national process).
* **consistency**: cells with more deaths than cases; a jump, when the period's cases are
  more than ``jump_factor`` times the previous period's and at least ``jump_min`` more.
* **suppression**: the share of cells withheld for disclosure control (not a fault, but
  a limit on what the region can see).

Per country (over all its submissions received by ``as_of``), **validity** comes from
the policy receipts: records read, quarantined, and quarantined by rule at the node
(counts only). A country's scorecard is shown beside the **regional median** of each
measure over the countries. A descriptor of each national system (sentinel or
comprehensive, case definition, laboratory confirmation) comes from the hub's
``systems/<ISO3>.toml``, with the confirmed share measured from released line lists.

The per-period measures are summed where the cells are (``quality_sql``: ``GROUP BY``
over the as-of picture and the received cells, written once in Ibis and run on SQLite,
PostgreSQL or Spark), which returns one row per country, disease and period; the
registry's expected areas, the delay and the jump are finished here. No cell is read
into Python, so memory does not grow with the number of cells; the time is the engine's
(a window over every current cell).
"""

from __future__ import annotations

import functools
import json
import statistics
import tomllib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, select

from epibridge.hub.picture_expr import Source
from epibridge.hub.quality_cache import Latest, StateCache, state
from epibridge.hub.quality_reporting import with_reporting
from epibridge.hub.quality_sql import PeriodSums, areas_seen, period_sums
from epibridge.hub.regional import cases_as_of
from epibridge.hub.regional_context import reporting_sums
from epibridge.hub.store import read_only
from epibridge.hub.tables import (
    submission_receipts_table,
    submissions_table,
    utc,
)
from epibridge.model.errors import EpibridgeError
from epibridge.registry.geography import Unit, units

ON_TIME_DAYS = 7
JUMP_FACTOR = 3.0
JUMP_MIN = 20
SYSTEM_TYPES = ("sentinel", "comprehensive", "mixed")


class QualityError(EpibridgeError):
    """A system descriptor that cannot be read."""


@dataclass(frozen=True)
class Thresholds:
    on_time_days: int = ON_TIME_DAYS
    jump_factor: float = JUMP_FACTOR
    jump_min: int = JUMP_MIN


@dataclass(frozen=True)
class SystemDescriptor:
    country: str
    surveillance: str  # sentinel, comprehensive or mixed
    case_definition: str
    lab_confirmation: str  # what the descriptor says (e.g. "a sample of cases")
    notes: str = ""


@dataclass
class CountryScore:
    """One country's summary: medians over its periods, validity over its submissions."""

    country: str
    periods: int = 0
    completeness: float | None = None
    #: Periods whose completeness came from reports (the others: from areas).
    periods_with_reports: int = 0
    on_time_rate: float | None = None
    #: Median over its periods with reports of the on-time share of reports received.
    reports_on_time_rate: float | None = None
    median_delay_days: float | None = None
    duplicate_cells: int = 0
    repeated_cells: int = 0
    deaths_over_cases: int = 0
    jumps: int = 0
    suppressed_share: float | None = None
    records_read: int = 0
    records_quarantined: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    confirmed_share: float | None = None
    system: SystemDescriptor | None = None

    @property
    def quarantined_share(self) -> float | None:
        return self.records_quarantined / self.records_read if self.records_read else None


@dataclass(frozen=True)
class Scorecards:
    as_of: datetime
    periods: pa.Table  # one row per country, disease and period
    countries: dict[str, CountryScore]
    regional_median: dict[str, float | None]


_PERIOD_SCHEMA = pa.schema(
    [
        ("country", pa.string()),
        ("disease", pa.string()),
        ("period", pa.string()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("area_level", pa.int8()),
        ("areas_reported", pa.int64()),
        ("areas_expected", pa.int64()),
        ("completeness", pa.float64()),
        ("completeness_basis", pa.string()),
        ("reports_expected", pa.int64()),
        ("reports_received", pa.int64()),
        ("reports_on_time_rate", pa.float64()),
        ("delay_days", pa.int64()),
        ("on_time", pa.bool_()),
        ("cells", pa.int64()),
        ("cells_suppressed", pa.int64()),
        ("duplicate_cells", pa.int64()),
        ("repeated_cells", pa.int64()),
        ("deaths_over_cases", pa.int64()),
        ("cases", pa.int64()),
        ("jump", pa.bool_()),
    ]
)


def expected_areas(country: str, level: int, on: date, seen: set[str]) -> set[str]:
    """The areas expected to report at ``level`` on ``on``: the registry's units of the
    country valid that day, or, for a country the registry does not hold at that level,
    the areas it ever reported (``seen``)."""
    registry = _registry_areas(country, level, on)
    return registry if registry else set(seen)


@functools.cache
def _units_at(country: str, level: int) -> tuple[Unit, ...]:
    return tuple(u for u in units(country) if u.level == level)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _registry_areas(country: str, level: int, on: date) -> set[str]:
    return {u.code for u in _units_at(country, level) if u.valid_on(on)}


def _period_rows(
    engine: Engine,
    at: datetime,
    sums: list[PeriodSums],
    limits: Thresholds,
    cells: Source | None = None,
) -> list[dict[str, Any]]:
    """One row per country, disease and period from the database's sums (in their
    order): completeness against the registry (or the areas seen), delay and jump."""
    registry = {
        (p.country, p.area_level, p.period_start): _registry_areas(
            p.country, p.area_level, p.period_start
        )
        for p in sums
    }
    # the areas a country ever reported, read only where the registry has none that day
    unheld = sorted({country for (country, _, _), areas in registry.items() if not areas})
    seen = areas_seen(cells or engine, at, unheld)
    rows: list[dict[str, Any]] = []
    for p in sums:
        expected_set = registry[(p.country, p.area_level, p.period_start)] or seen.get(
            (p.country, p.area_level), set()
        )
        expected = max(len(expected_set), p.areas_reported)
        delay = None if p.arrived is None else (p.arrived.date() - p.period_end).days
        rows.append(
            {
                "country": p.country,
                "disease": p.disease,
                "period": p.period,
                "period_start": p.period_start,
                "period_end": p.period_end,
                "area_level": p.area_level,
                "areas_reported": p.areas_reported,
                "areas_expected": expected,
                "completeness": p.areas_reported / expected if expected else None,
                "delay_days": delay,
                "on_time": None if delay is None else delay <= limits.on_time_days,
                "cells": p.cells,
                "cells_suppressed": p.cells_suppressed,
                "duplicate_cells": p.duplicate_cells,
                "repeated_cells": p.repeated_cells,
                "deaths_over_cases": p.deaths_over_cases,
                # the totals' cases, or every cell's when the totals add up to none
                "cases": p.total_cells_cases or p.all_cells_cases,
                "jump": False,
            }
        )
    return mark_jumps(with_reporting(rows, reporting_sums(engine, at)), limits)


def mark_jumps(rows: list[dict[str, Any]], limits: Thresholds) -> list[dict[str, Any]]:
    """Set ``jump`` on each period row (ordered by country, disease and period) whose
    cases exceed ``jump_factor`` times the previous period's, by at least ``jump_min``."""
    previous: dict[tuple[str, str], int] = {}
    for row in rows:
        series = (row["country"], row["disease"])
        before = previous.get(series)
        if before is not None:
            row["jump"] = (
                row["cases"] > limits.jump_factor * before
                and row["cases"] - before >= limits.jump_min
            )
        previous[series] = row["cases"]
    return rows


def read_system(home: Path, country: str) -> SystemDescriptor | None:
    path = home / "systems" / f"{country}.toml"
    if not path.exists():
        return None
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))["system"]
        kind = str(doc["surveillance"])
        if kind not in SYSTEM_TYPES:
            raise ValueError(f"surveillance = {kind!r} is not one of {', '.join(SYSTEM_TYPES)}")
        return SystemDescriptor(
            country,
            kind,
            str(doc.get("case_definition", "")),
            str(doc.get("lab_confirmation", "")),
            str(doc.get("notes", "")),
        )
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise QualityError(
            f"{path}: {exc}\n  what to do: write a [system] table with surveillance = "
            '"sentinel" | "comprehensive" | "mixed", case_definition and lab_confirmation'
        ) from None


def _validity(engine: Engine, at: datetime, scores: dict[str, CountryScore]) -> None:
    s, r = submissions_table, submission_receipts_table
    with engine.connect() as c:
        rows = c.execute(
            select(s.c.origin_country, r.c.receipt)
            .join(r, r.c.submission_id == s.c.submission_id)
            .where(s.c.received_at <= at)
        )
        for country, text in rows:
            quality = json.loads(text).get("source_quality")
            if not quality:
                continue
            score = scores.setdefault(country, CountryScore(country))
            score.records_read += int(quality.get("read", 0))
            score.records_quarantined += int(quality.get("quarantined", 0))
            for rule, n in quality.get("quarantined_by_rule", {}).items():
                score.quarantined_by_rule[rule] = score.quarantined_by_rule.get(rule, 0) + int(n)


def _confirmed(engine: Engine, at: datetime, scores: dict[str, CountryScore]) -> None:
    cases = cases_as_of(engine, at)
    totals: Counter[str] = Counter()
    confirmed: Counter[str] = Counter()
    for row in cases.select(["country", "case_count", "fields"]).to_pylist():
        fields = json.loads(row["fields"])
        if "classification" not in fields:
            continue
        totals[row["country"]] += row["case_count"]
        if fields["classification"] == "confirmed":
            confirmed[row["country"]] += row["case_count"]
    for country, n in totals.items():
        scores.setdefault(country, CountryScore(country)).confirmed_share = confirmed[country] / n


#: Scorecards already computed, by the question (countries, thresholds) and the state of
#: the submissions they were computed from (``quality_cache.state``).
_CACHE: StateCache[Scorecards] = StateCache()


def scorecards(
    engine: Engine,
    at: datetime,
    home: Path | None = None,
    countries: Sequence[str] = (),
    limits: Thresholds = Thresholds(),
    cells: Source | None = None,
) -> Scorecards:
    """Scorecards of every country (the regional median needs them all); ``countries``
    restricts only the periods table returned.

    Summing every cell the hub holds still takes the database seconds at regional scale
    (millions of cells), so the result is kept per state of the submissions
    (``quality_cache``) and reused until a submission arrives; the system descriptors
    (files an analyst edits) are read each time. ``cells``: where the cells are summed
    (default: the hub's database; ``picture_expr.SparkSource`` for Spark).
    """
    at = utc(at, "the as-of time")
    engine = read_only(engine)
    question = (tuple(countries), limits)
    cached = _CACHE.cached(
        question, state(engine, at), lambda: _compute(engine, at, countries, limits, cells)
    )
    return _with_systems(cached, at, home)


def latest_scorecards(
    engine: Engine, at: datetime, home: Path | None, wait: float
) -> Latest[Scorecards]:
    """For a page that must answer at once: the scorecards at ``at`` when they are ready
    within ``wait`` seconds, else the newest ones held (computed at an earlier state, their
    ``as_of`` says when) while the current ones are computed in the background."""
    at = utc(at, "the as-of time")
    engine = read_only(engine)
    limits = Thresholds()
    found = _CACHE.latest(
        ((), limits), state(engine, at), lambda: _compute(engine, at, (), limits), wait
    )
    value = None if found.value is None else _with_systems(found.value, found.value.as_of, home)
    return Latest(value, found.current, found.computing_since)


def _with_systems(cached: Scorecards, at: datetime, home: Path | None) -> Scorecards:
    """A copy of ``cached`` (the caller may change its scores) with the hub's system
    descriptors read now."""
    scores = {
        c: replace(score, quarantined_by_rule=dict(score.quarantined_by_rule))
        for c, score in cached.countries.items()
    }
    if home is not None:
        for country, score in scores.items():
            score.system = read_system(home, country)
    return Scorecards(at, cached.periods, scores, dict(cached.regional_median))


def _compute(
    engine: Engine,
    at: datetime,
    countries: Sequence[str],
    limits: Thresholds,
    cells: Source | None = None,
) -> Scorecards:
    sums = period_sums(cells or engine, at)
    rows = _period_rows(engine, at, sums, limits, cells)
    scores: dict[str, CountryScore] = {}
    by_country: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_country[row["country"]].append(row)
    for country, periods in by_country.items():
        score = scores.setdefault(country, CountryScore(country))
        score.periods = len(periods)
        score.completeness = _median([p["completeness"] for p in periods])
        reported = [p for p in periods if p["completeness_basis"] == "reports"]
        score.periods_with_reports = len(reported)
        rates = [p["reports_on_time_rate"] for p in reported]
        score.reports_on_time_rate = _median(rates)
        on_time = [p["on_time"] for p in periods if p["on_time"] is not None]
        score.on_time_rate = sum(on_time) / len(on_time) if on_time else None
        score.median_delay_days = _median([p["delay_days"] for p in periods])
        score.duplicate_cells = sum(p["duplicate_cells"] for p in periods)
        score.repeated_cells = sum(p["repeated_cells"] for p in periods)
        score.deaths_over_cases = sum(p["deaths_over_cases"] for p in periods)
        score.jumps = sum(1 for p in periods if p["jump"])
        cells = sum(p["cells"] for p in periods)
        score.suppressed_share = (
            sum(p["cells_suppressed"] for p in periods) / cells if cells else None
        )
    _validity(engine, at, scores)
    _confirmed(engine, at, scores)
    median = {
        name: _median([getattr(s, name) for s in scores.values()])
        for name in (
            "completeness",
            "on_time_rate",
            "reports_on_time_rate",
            "median_delay_days",
            "suppressed_share",
            "quarantined_share",
            "confirmed_share",
        )
    }
    wanted = [r for r in rows if not countries or r["country"] in countries]
    table = pa.Table.from_pylist(wanted, _PERIOD_SCHEMA) if wanted else _PERIOD_SCHEMA.empty_table()
    return Scorecards(at, table, scores, median)


def completeness_basis(score: CountryScore) -> str:
    """What a country's completeness was computed from over its periods: ``reports``,
    ``areas``, or ``reports (n/m)`` when only some periods had reports."""
    with_reports, periods = score.periods_with_reports, score.periods
    if not periods:
        return ""
    if with_reports == periods:
        return "reports"
    return "areas" if not with_reports else f"reports ({with_reports}/{periods})"


def score_json(score: CountryScore) -> dict[str, Any]:
    """A country's summary as plain JSON (for the API and ``--out``)."""
    return {
        "country": score.country,
        "periods": score.periods,
        "completeness": score.completeness,
        "periods_with_reports": score.periods_with_reports,
        "on_time_rate": score.on_time_rate,
        "reports_on_time_rate": score.reports_on_time_rate,
        "median_delay_days": score.median_delay_days,
        "duplicate_cells": score.duplicate_cells,
        "repeated_cells": score.repeated_cells,
        "deaths_over_cases": score.deaths_over_cases,
        "jumps": score.jumps,
        "suppressed_share": score.suppressed_share,
        "records_read": score.records_read,
        "records_quarantined": score.records_quarantined,
        "quarantined_share": score.quarantined_share,
        "quarantined_by_rule": score.quarantined_by_rule,
        "confirmed_share": score.confirmed_share,
        "system": None
        if score.system is None
        else {
            "surveillance": score.system.surveillance,
            "case_definition": score.system.case_definition,
            "lab_confirmation": score.system.lab_confirmation,
            "notes": score.system.notes,
        },
    }
