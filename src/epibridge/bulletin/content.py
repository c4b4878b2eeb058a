"""What the weekly bulletin says: its figures, map, curves, alerts and quality table.

Everything is read from the hub's store **as of** a time (``regional.counts_as_of``), so
the same week, disease and as-of time give the same bulletin, byte for byte, however
much later it is made. For an ISO week (Monday to Sunday):

* **key figures**: the countries whose weekly counts cover the week, the cases they
  reported, the change from the previous week (the same countries), and the cases
  corrected for reporting completeness and under-ascertainment (``hub/burden.py``) with
  an approximate 95% interval of their sum (``figures.sum_interval``). Countries that
  release by month are on the map, not in these weekly figures;
* **map**: corrected incidence per 100,000 per area (``web.choropleth.build_map``);
* **curves**: each country's reported cases over the ``CURVE_WEEKS`` weeks up to this
  one (``web.curve.build_curve``), provisional periods marked as on the dashboard;
* **alerts** of the disease open at the as-of time or changed during the week, with
  their status at the as-of time (replayed from their events), countries, cross-border
  flag and who acknowledged them;
* **quality**: the scorecards (``hub/quality.py``) of the countries in the bulletin
  beside the regional median.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, select

from epibridge import __version__
from epibridge.hub.alert_delivery import deliveries
from epibridge.hub.alert_store import OPEN, Event, alerts, events
from epibridge.hub.burden import burden
from epibridge.hub.picture_expr import Filters
from epibridge.hub.quality import scorecards
from epibridge.hub.regional import counts_as_of
from epibridge.hub.regional_context import burden_inputs
from epibridge.hub.tables import submissions_table, utc
from epibridge.model.agreement import Agreement
from epibridge.model.errors import EpibridgeError, SourceError
from epibridge.registry.expansion import expansion_factors
from epibridge.registry.geography import registry_version
from epibridge.web.choropleth import MapModel, build_map
from epibridge.web.curve import PROVISIONAL_DAYS, CurveModel, Point, build_curve
from epibridge.web.geo import SOURCE
from epibridge.web.i18n import Formatter

from .figures import change, sum_interval

CURVE_WEEKS = 26
#: How far back a monthly period may start and still hold a week's first day.
MONTH_REACH = timedelta(days=31)
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_STATUS_CHANGE = re.compile(r"(\w+) -> (\w+)")


class BulletinError(EpibridgeError):
    """The bulletin cannot be made as asked (a malformed week, no data, no place to write)."""

    exit_code = 1


def parse_week(text: str) -> date:
    """The Monday of the ISO week ``YYYY-Www``."""
    match = _WEEK.fullmatch(text.strip())
    if match is not None:
        try:
            return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            pass
    raise BulletinError(
        f"{text!r} is not an ISO week: write it YYYY-Www, e.g. 2026-W47 (weeks 01 to 52 or 53)"
    )


def week_name(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Source:
    """Where the bulletin reads from: the hub's store, agreements and folder."""

    engine: Engine
    agreements: Mapping[str, tuple[Agreement, Any]]
    folder: Path | None
    hub_name: str


@dataclass(frozen=True)
class KeyFigures:
    countries_reporting: list[str]
    countries_monthly: list[str]  # on the map, not in the weekly figures
    countries_silent: list[str]  # sent the hub data before, nothing for this week
    cases: int
    cases_previous: int | None  # the same countries, the week before
    change: float | None
    areas_withheld: int
    corrected: tuple[float, float, float] | None  # estimate, low, high


@dataclass(frozen=True)
class CountryFigures:
    country: str
    period: str
    cases: int
    areas_reported: int | None
    areas_expected: int | None
    corrected: float | None
    corrected_low: float | None
    corrected_high: float | None


@dataclass(frozen=True)
class Curve:
    country: str
    model: CurveModel
    points: list[Point]


@dataclass(frozen=True)
class Acknowledgement:
    country: str
    by: str
    at: datetime


@dataclass(frozen=True)
class AlertRow:
    alert_id: str
    title: str
    status: str  # at the as-of time
    countries: tuple[str, ...]
    cross_border: bool
    early_warning: bool
    first_week: str
    last_week: str
    changes: list[str]  # the week's events, "kind (date)"
    acknowledged: list[Acknowledgement]
    waiting: list[str]  # countries sent the alert that had not acknowledged it


@dataclass(frozen=True)
class QualityRow:
    country: str
    completeness: float | None
    on_time_rate: float | None
    suppressed_share: float | None


@dataclass
class Bulletin:
    hub_name: str
    disease: str
    week: str
    start: date
    end: date
    as_of: datetime
    figures: KeyFigures
    countries: list[CountryFigures]
    map: MapModel
    boundary_source: str
    registry_version: str
    curves: list[Curve]
    alerts: list[AlertRow]
    quality: list[QualityRow]
    median: QualityRow
    version: str = __version__
    provisional_days: int = PROVISIONAL_DAYS
    curve_weeks: int = CURVE_WEEKS


def _date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _senders(engine: Engine, at: datetime) -> list[str]:
    s = submissions_table
    with engine.connect() as c:
        found = c.execute(
            select(s.c.origin_country).where(s.c.received_at <= at).distinct()
        ).scalars()
        return sorted(set(found))


def _covering(engine: Engine, at: datetime, disease: str | None, week: date) -> pa.Table:
    """Cells (of every disease when ``disease`` is None) whose period holds ``week``'s Monday."""
    filters = Filters(
        diseases=[disease] if disease else [], period_from=week - MONTH_REACH, period_to=week
    )
    table = counts_as_of(engine, at, filters)
    if table.num_rows == 0:
        return table
    keep = [
        _date(start) <= week <= _date(end)
        for start, end in zip(
            table.column("period_start").to_pylist(),
            table.column("period_end").to_pylist(),
            strict=True,
        )
    ]
    return table.filter(pa.array(keep, pa.bool_()))


def _disease(table: pa.Table, asked: str | None, week: str, at: datetime) -> str:
    held = sorted(set(table.column("disease").to_pylist())) if table.num_rows else []
    when = at.isoformat(timespec="seconds")
    if asked is not None:
        if asked not in held:
            others = f" (it holds {', '.join(held)})" if held else ""
            raise BulletinError(f"the hub holds no {asked} counts for {week} as of {when}{others}")
        return asked
    if not held:
        raise BulletinError(
            f"the hub holds no counts for {week} as of {when}: check the week, or --as-of"
        )
    if len(held) > 1:
        raise BulletinError(
            f"the hub holds counts of several diseases for {week} ({', '.join(held)}): "
            "choose one with --disease"
        )
    return str(held[0])


def _weekly_totals(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {
        r["country"]: r
        for r in table.to_pylist()
        if r["status"] == "total" and r["period_type"] == "week"
    }


def _figures(
    week_table: pa.Table, previous_table: pa.Table, senders: list[str]
) -> tuple[KeyFigures, list[CountryFigures]]:
    totals = _weekly_totals(week_table)
    before = _weekly_totals(previous_table)
    with_data = set(week_table.column("country").to_pylist()) if week_table.num_rows else set()
    reporting = sorted(totals)
    cases = sum(int(r["cases"] or 0) for r in totals.values())
    previous = (
        sum(int(before[c]["cases"] or 0) for c in reporting)
        if set(reporting) <= set(before)
        else None
    )
    parts = [
        (r["cases_corrected"], r["cases_corrected_low"], r["cases_corrected_high"])
        for r in totals.values()
        if r["cases_corrected"] is not None
    ]
    figures = KeyFigures(
        countries_reporting=reporting,
        countries_monthly=sorted(with_data - set(totals)),
        countries_silent=sorted(set(senders) - with_data),
        cases=cases,
        cases_previous=previous,
        change=change(cases, previous),
        areas_withheld=sum(int(r["areas_withheld"] or 0) for r in totals.values()),
        corrected=sum_interval(
            (float(e), float(lo or 0.0), float(hi or 0.0)) for e, lo, hi in parts
        ),
    )
    rows = [
        CountryFigures(
            c,
            r["period"],
            int(r["cases"] or 0),
            r["areas_reported"],
            r["areas_expected"],
            r["cases_corrected"],
            r["cases_corrected_low"],
            r["cases_corrected_high"],
        )
        for c, r in sorted(totals.items())
    ]
    return figures, rows


def _curves(
    source: Source, at: datetime, disease: str, countries: list[str], week: date, fmt: Formatter
) -> list[Curve]:
    first = week - timedelta(weeks=CURVE_WEEKS - 1)
    factors = _factors(source)
    out = []
    for country in countries:
        filters = Filters(
            countries=[country], diseases=[disease], period_from=first, period_to=week
        )
        held = counts_as_of(source.engine, at, filters)
        table = burden(held, factors, **burden_inputs(source.engine, at, held))
        points = [
            Point(
                r["period"],
                _date(r["period_start"]),
                _date(r["period_end"]),
                None if r["cases"] is None else float(r["cases"]),
            )
            for r in sorted(table.to_pylist(), key=lambda r: r["period_start"])
            if r["status"] == "total"
        ]
        out.append(Curve(country, build_curve(points, at.date(), fmt), points))
    return out


def status_at(current: str, history: list[Event], at: datetime) -> str:
    """An alert's status at ``at``, replayed from its ``status_changed`` events."""
    status = "new"
    for event in history:
        if event.kind != "status_changed" or utc(event.at, "an event time") > at:
            continue
        found = _STATUS_CHANGE.match(event.text)
        if found is None:
            return current
        status = found.group(2)
    return status


def _alerts(
    engine: Engine, disease: str, start: datetime, end: datetime, at: datetime
) -> list[AlertRow]:
    rows = []
    with engine.connect() as c:
        history: dict[str, list[Event]] = {}
        for event in events(c):
            history.setdefault(event.alert_id, []).append(event)
        for alert in alerts(c, disease=disease):
            if utc(alert.created_at, "an alert time") > at:
                continue
            mine = history.get(alert.alert_id, [])
            status = status_at(alert.status, mine, at)
            week_events = [
                e for e in mine if start <= utc(e.at, "an event time") < end and e.at <= at
            ]
            if status not in OPEN and not week_events:
                continue
            sent = [d for d in deliveries(c, alert.alert_id) if utc(d.sent_at, "a time") <= at]
            acked: dict[str, Acknowledgement] = {}
            for d in sent:
                if d.acknowledged_at is not None and utc(d.acknowledged_at, "a time") <= at:
                    acked.setdefault(
                        d.country,
                        Acknowledgement(d.country, d.acknowledged_by or "", d.acknowledged_at),
                    )
            rows.append(
                AlertRow(
                    alert.alert_id,
                    alert.title,
                    status,
                    alert.countries,
                    alert.cross_border,
                    alert.early_warning,
                    week_name(alert.first_week),
                    week_name(alert.last_week),
                    [f"{e.kind} ({e.at.date().isoformat()})" for e in week_events],
                    sorted(acked.values(), key=lambda a: a.country),
                    sorted({d.country for d in sent} - set(acked)),
                )
            )
    return rows


def _quality(
    source: Source, at: datetime, countries: list[str]
) -> tuple[list[QualityRow], QualityRow]:
    cards = scorecards(source.engine, at, source.folder)
    rows = [
        QualityRow(c, s.completeness, s.on_time_rate, s.suppressed_share)
        for c in countries
        if (s := cards.countries.get(c)) is not None
    ]
    m = cards.regional_median
    return rows, QualityRow(
        "regional median", m["completeness"], m["on_time_rate"], m["suppressed_share"]
    )


def _factors(source: Source) -> Mapping[tuple[str, str], Any]:
    try:
        return expansion_factors(source.folder)
    except SourceError as error:
        raise BulletinError(str(error)) from None


def gather(source: Source, week: date, as_of: datetime, disease: str | None = None) -> Bulletin:
    """The bulletin of the ISO week starting ``week`` (a Monday) as of ``as_of``."""
    if week.isoweekday() != 1:
        raise BulletinError(f"{week} is not a Monday: a bulletin covers an ISO week")
    at = utc(as_of, "the as-of time")
    name = week_name(week)
    covering = _covering(source.engine, at, disease, week)
    chosen = _disease(covering, disease, name, at)
    covering = covering.filter(pc.equal(covering["disease"], chosen))
    factors = _factors(source)
    week_table = burden(covering, factors, **burden_inputs(source.engine, at, covering))
    before = _covering(source.engine, at, chosen, week - timedelta(weeks=1))
    previous_table = burden(before, factors, **burden_inputs(source.engine, at, before))
    senders = _senders(source.engine, at)
    figures, per_country = _figures(week_table, previous_table, senders)
    fmt = Formatter("en")
    with_data = sorted(set(week_table.column("country").to_pylist()))
    model = build_map(week_table, "corrected", week, with_data, None, lambda s: s, fmt)
    start = datetime.combine(week, time(), UTC)
    quality, median = _quality(source, at, with_data)
    return Bulletin(
        hub_name=source.hub_name,
        disease=chosen,
        week=name,
        start=week,
        end=week + timedelta(days=6),
        as_of=at,
        figures=figures,
        countries=per_country,
        map=model,
        boundary_source=SOURCE,
        registry_version=registry_version(),
        curves=_curves(source, at, chosen, with_data, week, fmt),
        alerts=_alerts(source.engine, chosen, start, start + timedelta(days=7), at),
        quality=quality,
        median=median,
    )
