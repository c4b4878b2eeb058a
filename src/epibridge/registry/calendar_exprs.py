"""Calendar rules as Ibis expressions, for the pipeline to apply to millions of dates.

Plain day-of-week and date arithmetic only, so the expressions compile for any engine;
``tests/registry/test_calendars.py`` checks them against the scalar rules in
:mod:`epibridge.registry.calendars`, which remain the reference.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from epibridge.registry.calendars import (
    PERIOD_TYPES,
    SPAN_MONTHS,
    WeekSystem,
    week_start_weekday,
)


def _days(n: ir.IntegerValue) -> ir.IntervalValue:
    return n.as_interval("D")


def shift(d: ir.DateValue, by: ir.IntervalValue) -> ir.DateValue:
    """``d + by`` as a date on every engine.

    DuckDB adds an interval to a date as a timestamp while Ibis still calls the result a
    date (and drops a cast to date as a no-op), so a date written as text would read
    ``2025-02-10 00:00:00`` on DuckDB and ``2025-02-10`` on Spark. The round trip through
    a timestamp makes it a date everywhere.
    """
    return (d + by).cast("timestamp").cast("date")


def week_start_expr(d: ir.DateValue, system: WeekSystem) -> ir.DateValue:
    """Start date of the ``system`` week containing ``d``."""
    weekday = week_start_weekday(system)
    back = (d.day_of_week.index() - weekday + 7) % 7
    return shift(d, _days(-back))


def _week_anchor_expr(d: ir.DateValue, system: WeekSystem) -> ir.DateValue:
    # Fourth day of the week: it lies in the epi-year, and its day-of-year // 7 is the week.
    return shift(week_start_expr(d, system), ibis.interval(days=3))


def week_year_expr(d: ir.DateValue, system: WeekSystem) -> ir.IntegerValue:
    """Epi-year of ``d`` in ``system`` (as ``week_of(d, system)[0]``)."""
    return _week_anchor_expr(d, system).year()


def week_number_expr(d: ir.DateValue, system: WeekSystem) -> ir.IntegerValue:
    """Week number of ``d`` in ``system`` (as ``week_of(d, system)[1]``)."""
    return (_week_anchor_expr(d, system).day_of_year() - 1) // 7 + 1


def week_label_expr(d: ir.DateValue, system: WeekSystem) -> ir.StringValue:
    """Canonical week label such as ``2025-W03``, identical to ``Period.label``."""
    year = week_year_expr(d, system).cast("string").lpad(4, "0")
    week = week_number_expr(d, system).cast("string").lpad(2, "0")
    return year + "-W" + week


def month_start_expr(d: ir.DateValue) -> ir.DateValue:
    """First day of the month containing ``d``."""
    return ibis.date(d.year(), d.month(), 1)


def period_end_expr(start: ir.DateValue, type: str) -> ir.DateValue:
    """Last day (inclusive) of the ``type`` period starting on ``start``."""
    if type == "day":
        return start
    if type == "week":
        return shift(start, ibis.interval(days=6))
    if type == "biweek":
        return shift(start, ibis.interval(days=13))
    if type in SPAN_MONTHS:
        return shift(shift(start, ibis.interval(months=SPAN_MONTHS[type])), ibis.interval(days=-1))
    raise ValueError(f"unknown period type {type!r}; expected one of {PERIOD_TYPES}")


def week_start_from_year_week_expr(
    year: ir.IntegerValue, week: ir.IntegerValue, system: WeekSystem
) -> ir.DateValue:
    """Start date of week ``week`` of epi-year ``year``, for sources giving only year + week.

    Unlike ``week_start`` it does not reject week 53 of a 52-week year (that yields week 1
    of the next year); validate with ``weeks_in_year`` upstream if needed.
    """
    first = week_start_expr(ibis.date(year, 1, 4), system)
    return shift(first, _days((week - 1) * 7))
