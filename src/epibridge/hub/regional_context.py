"""As-of reads of the regional reporting and denominators tables.

The same rules as the counts (``regional.py``): a submission is live at ``at`` if it was
received by then and no revision received by then replaces it; among the live
submissions, each row's key takes its value from the one received last. The key of a
reporting row is its place, disease (null: every notifiable disease) and period; of a
population figure, its place, year, age band and sex. Every row of the answer keeps its
lineage (submission, agreement, received time, position in the released part).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, Table, case, func, or_, select

from epibridge.hub.picture_expr import Filters, as_date
from epibridge.hub.regional import (
    AS_OF_PERIOD,
    AS_OF_PLACE,
    LINEAGE_FIELDS,
    aware,
    live_submissions,
)
from epibridge.hub.store import read_only
from epibridge.hub.tables import regional_denominators_table, regional_reporting_table, utc

_REPORTING_KEY = ("country", "area", "disease", "period_type", "calendar", "period")
_DENOMINATORS_KEY = ("country", "area", "year", "age_band", "sex")

REPORTING_AS_OF = pa.schema(
    [
        *AS_OF_PLACE,
        pa.field("disease", pa.string()),
        *AS_OF_PERIOD,
        pa.field("reports_expected", pa.int64()),
        pa.field("reports_received", pa.int64()),
        pa.field("reports_on_time", pa.int64()),
        *LINEAGE_FIELDS,
    ],
    metadata={"name": "regional_reporting_as_of", "version": "1"},
)

DENOMINATORS_AS_OF = pa.schema(
    [
        *AS_OF_PLACE,
        pa.field("year", pa.int16()),
        pa.field("age_band", pa.string()),
        pa.field("sex", pa.string()),
        pa.field("population", pa.int64()),
        pa.field("source", pa.string()),
        *LINEAGE_FIELDS,
    ],
    metadata={"name": "regional_denominators_as_of", "version": "1"},
)


def _ranked(
    engine: Engine,
    table: Table,
    key: Sequence[str],
    at: datetime,
    names: Sequence[str],
    where: Sequence[Any],
) -> Any:
    """The live rows of ``table`` at ``at`` in ``names`` (and the agreement and received
    time), each ranked within its key, 1 for the one received last."""
    live = live_submissions(engine, at)
    return (
        select(
            *[table.c[n] for n in names],
            live.c.agreement_id,
            live.c.received_at,
            func.row_number()
            .over(
                partition_by=[table.c[k] for k in key],
                order_by=[live.c.received_at.desc(), table.c.submission_id.desc()],
            )
            .label("rank"),
        )
        .join(live, live.c.submission_id == table.c.submission_id)
        .where(*where)
        .subquery("ranked")
    )


def _as_of(
    engine: Engine,
    table: Table,
    key: Sequence[str],
    at: datetime,
    schema: pa.Schema,
    where: Sequence[Any],
    order: Sequence[str],
) -> pa.Table:
    names = [f.name for f in schema if f.name not in ("agreement_id", "received_at")]
    ranked = _ranked(engine, table, key, at, names, where)
    query = (
        select(*[ranked.c[f.name] for f in schema])
        .where(ranked.c.rank == 1)
        .order_by(*[ranked.c[n] for n in order], ranked.c.source_row)
    )
    with read_only(engine).connect() as connection:
        rows = connection.execute(query).fetchall()
    if not rows:
        return schema.empty_table()
    columns = dict(zip([f.name for f in schema], zip(*rows, strict=True), strict=True))
    columns["received_at"] = tuple(utc(aware(v), "received_at") for v in columns["received_at"])
    for f in schema:
        if pa.types.is_date32(f.type):
            columns[f.name] = tuple(as_date(v) for v in columns[f.name])
    return pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)


def _reporting_where(filters: Filters) -> list[Any]:
    t = regional_reporting_table
    where: list[Any] = []
    if filters.countries:
        where.append(t.c.country.in_(list(filters.countries)))
    if filters.diseases:
        where.append(or_(t.c.disease.is_(None), t.c.disease.in_(list(filters.diseases))))
    if filters.period_from is not None:
        where.append(t.c.period_start >= filters.period_from)
    if filters.period_to is not None:
        where.append(t.c.period_start <= filters.period_to)
    return where


def reporting_as_of(engine: Engine, at: datetime, filters: Filters | None = None) -> pa.Table:
    """The reports expected and received the hub knew at ``at``, with their lineage.
    ``filters.diseases`` keeps those diseases and the reports covering every disease."""
    at = utc(at, "the as-of time")
    where = _reporting_where(filters or Filters())
    order = ("country", "disease", "area", "period_start")
    return _as_of(
        engine, regional_reporting_table, _REPORTING_KEY, at, REPORTING_AS_OF, where, order
    )


REPORTING_SUMS = pa.schema(
    [
        pa.field("country", pa.string()),
        pa.field("disease", pa.string()),
        pa.field("period_type", pa.string()),
        pa.field("period", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("area_level", pa.int8()),
        pa.field("areas", pa.int64()),
        pa.field("areas_reporting", pa.int64()),
        pa.field("reports_expected", pa.int64()),
        pa.field("reports_received", pa.int64()),
        pa.field("reports_on_time", pa.int64()),
        pa.field("on_time_known", pa.int64()),
    ],
    metadata={"name": "regional_reporting_sums", "version": "1"},
)


def reporting_sums(engine: Engine, at: datetime, filters: Filters | None = None) -> pa.Table:
    """Per country, disease (null: all diseases), period type and period of the as-of
    reporting, summed in the database: the areas with a row and those that sent any report,
    reports expected, received, and on time (over the ``on_time_known`` received reports
    whose timeliness was given)."""
    at = utc(at, "the as-of time")
    names = (
        "country",
        "area",
        "disease",
        "period_type",
        "period",
        "period_start",
        "period_end",
        "area_level",
        "reports_expected",
        "reports_received",
        "reports_on_time",
    )
    t = regional_reporting_table
    r = _ranked(engine, t, _REPORTING_KEY, at, names, _reporting_where(filters or Filters()))
    known = r.c.reports_on_time.is_not(None)
    query = (
        select(
            r.c.country,
            r.c.disease,
            r.c.period_type,
            r.c.period,
            func.min(r.c.period_start).label("period_start"),
            func.max(r.c.period_end).label("period_end"),
            func.min(r.c.area_level).label("area_level"),
            func.count().label("areas"),
            func.sum(case((r.c.reports_received > 0, 1), else_=0)).label("areas_reporting"),
            func.sum(r.c.reports_expected).label("reports_expected"),
            func.sum(r.c.reports_received).label("reports_received"),
            func.sum(case((known, r.c.reports_on_time), else_=0)).label("reports_on_time"),
            func.sum(case((known, r.c.reports_received), else_=0)).label("on_time_known"),
        )
        .where(r.c.rank == 1)
        .group_by(r.c.country, r.c.disease, r.c.period_type, r.c.period)
        .order_by(r.c.country, r.c.disease, r.c.period_type, r.c.period)
    )
    with read_only(engine).connect() as connection:
        rows = connection.execute(query).fetchall()
    if not rows:
        return REPORTING_SUMS.empty_table()
    columns = list(zip(*rows, strict=True))
    values = {}
    for f, c in zip(REPORTING_SUMS, columns, strict=True):
        if pa.types.is_date32(f.type):
            values[f.name] = pa.array([as_date(v) for v in c], f.type)
        elif pa.types.is_integer(f.type):
            values[f.name] = pa.array([int(v) for v in c], f.type)
        else:
            values[f.name] = pa.array(list(c), f.type)
    return pa.table(values, schema=REPORTING_SUMS)


def denominators_as_of(engine: Engine, at: datetime, filters: Filters | None = None) -> pa.Table:
    """The population figures the hub knew at ``at``, with their lineage (countries of
    ``filters`` only; its diseases and periods do not apply to populations)."""
    at = utc(at, "the as-of time")
    filters = filters or Filters()
    t = regional_denominators_table
    where = [t.c.country.in_(list(filters.countries))] if filters.countries else []
    order = ("country", "area", "year")
    return _as_of(engine, t, _DENOMINATORS_KEY, at, DENOMINATORS_AS_OF, where, order)


def burden_inputs(engine: Engine, at: datetime, cells: pa.Table) -> dict[str, pa.Table]:
    """What ``burden`` takes beside ``cells`` (rows of ``counts_as_of`` or
    ``cells_for_burden``): the reporting of the same countries, diseases and period
    starts, and the countries' population figures, as the hub knew them at ``at``."""
    if cells.num_rows == 0:
        return {}
    countries = sorted(set(cells.column("country").to_pylist()))
    starts = cells.column("period_start").to_pylist()
    filters = Filters(
        countries=countries,
        diseases=sorted(set(cells.column("disease").to_pylist())),
        period_from=min(starts),
        period_to=max(starts),
    )
    return {
        "reporting": reporting_as_of(engine, at, filters),
        "populations": denominators_as_of(engine, at, Filters(countries=countries)),
    }
