"""The reporting period of each record, as Ibis expressions (see ``model.profile.PeriodSpec``)."""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from epibridge.model.profile import PeriodSpec
from epibridge.pipeline.parse import MONTHS, blank_to_null, parse_count, parse_date, source
from epibridge.registry import calendar_exprs, calendars


@dataclass(frozen=True)
class PeriodColumns:
    label: ir.StringValue
    type: ir.StringValue
    calendar: ir.StringValue
    start: ir.DateValue
    end: ir.DateValue
    #: The source text shown when the period is wrong, and why it is wrong (NULL if fine).
    source: ir.StringValue
    problem: ir.StringValue


def week_system(spec: PeriodSpec, country: str) -> str:
    return calendars.country_week_system(country) if spec.calendar == "country" else spec.calendar


def _from_date(day: ir.DateValue, kind: str, system: str) -> PeriodColumns:
    if kind == "week":
        start = calendar_exprs.week_start_expr(day, system)
        label = calendar_exprs.week_label_expr(day, system)
        cal = system
    elif kind == "day":
        start, label, cal = day, day.strftime("%Y-%m-%d"), "gregorian"
    elif kind == "month":
        start = calendar_exprs.month_start_expr(day)
        label, cal = start.strftime("%Y-%m"), "gregorian"
    elif kind == "year":
        start = ibis.date(day.year(), 1, 1)
        label, cal = day.year().cast("string"), "gregorian"
    else:
        raise ValueError(
            f"period type '{kind}' cannot be derived from a date; use day, week, month or year"
        )
    end = calendar_exprs.period_end_expr(start, kind)
    missing = ibis.ifelse(
        day.isnull(), ibis.literal("no date to place the record in a period"), ibis.null()
    ).cast("string")
    return PeriodColumns(
        label,
        ibis.literal(kind),
        ibis.literal(cal),
        start,
        end,
        ibis.null().cast("string"),
        missing,
    )


def _iso_date(year: ir.IntegerValue, month: ir.IntegerValue) -> ir.DateValue:
    text = year.cast("string").concat("-", month.cast("string").lpad(2, "0"), "-01")
    return text.try_cast("date")


def period_columns(
    raw: ir.Table,
    spec: PeriodSpec,
    country: str,
    dates: dict[str, ir.DateValue],
    texts: dict[str, ir.StringValue],
) -> PeriodColumns:
    """Period of each row of ``raw`` (dates: the typed model date fields; texts: their
    source text, so that an unreadable date is told apart from a missing one)."""
    system = week_system(spec, country)
    if spec.from_date:
        names = (spec.from_date, *spec.fallback_dates)
        chain = [dates[name] for name in names]
        day = ibis.coalesce(*chain) if len(chain) > 1 else chain[0]
        found = _from_date(day, spec.type, system)
        given = [texts[n] for n in names if n in texts]
        text = (
            (ibis.coalesce(*given) if len(given) > 1 else given[0])
            if given
            else ibis.null().cast("string")
        )
        return PeriodColumns(
            found.label, found.type, found.calendar, found.start, found.end, text, found.problem
        )
    if spec.date_column:
        text = blank_to_null(source(raw, spec.date_column))
        columns = _from_date(parse_date(text, spec.date_formats), spec.type, system)
        problem = ibis.ifelse(
            text.notnull() & columns.problem.notnull(),
            text.concat(" is not a date"),
            columns.problem,
        ).cast("string")
        return PeriodColumns(
            columns.label, columns.type, columns.calendar, columns.start, columns.end, text, problem
        )
    if spec.dhis2 or spec.start:
        return PeriodColumns(
            raw["_p_label"],
            raw["_p_type"],
            raw["_p_calendar"],
            raw["_p_start"],
            raw["_p_end"],
            blank_to_null(source(raw, spec.dhis2 or str(spec.start))),
            raw["_p_problem"],
        )
    if spec.year is None:
        raise ValueError("period needs a year column")
    year_text = blank_to_null(source(raw, spec.year))
    year = parse_count(year_text)
    if spec.buddhist_era:
        year = year - 543
    if spec.week:
        week_text = blank_to_null(source(raw, spec.week))
        week = parse_count(week_text)
        start = calendar_exprs.week_start_from_year_week_expr(year, week, system)
        ok = (
            (week >= 1)
            & (week <= 53)
            & (calendar_exprs.week_year_expr(start, system) == year)
            & (calendar_exprs.week_number_expr(start, system) == week)
        )
        label = year.cast("string").concat("-W", week.cast("string").lpad(2, "0"))
        label_source = year_text.fill_null("").concat("/", week_text.fill_null(""))
        problem = ibis.ifelse(
            ok.fill_null(False),
            ibis.null(),
            label_source.concat(" is not a week of the ", ibis.literal(system), " calendar"),
        )
        return PeriodColumns(
            label,
            ibis.literal("week"),
            ibis.literal(system),
            start,
            calendar_exprs.shift(start, ibis.interval(days=6)),
            label_source,
            problem.cast("string"),
        )
    if spec.month:
        month_text = blank_to_null(source(raw, spec.month))
        month_numbers = {
            **{k: str(v) for k, v in MONTHS.items()},
            **{k: str(v) for k, v in spec.month_names.items()},
        }
        by_name = month_text.lower().substitute(month_numbers, else_=month_text)
        month = parse_count(by_name.cast("string"))
        start = _iso_date(year, month)
        label_source = year_text.fill_null("").concat("/", month_text.fill_null(""))
        problem = ibis.ifelse(
            start.isnull(), label_source.concat(" is not a year and month"), ibis.null()
        ).cast("string")
        return PeriodColumns(
            start.strftime("%Y-%m"),
            ibis.literal("month"),
            ibis.literal("gregorian"),
            start,
            calendar_exprs.period_end_expr(start, "month"),
            label_source,
            problem,
        )
    start = _iso_date(year, ibis.literal(1))
    problem = ibis.ifelse(
        start.isnull(), year_text.fill_null("").concat(" is not a year"), ibis.null()
    ).cast("string")
    return PeriodColumns(
        year.cast("string"),
        ibis.literal("year"),
        ibis.literal("gregorian"),
        start,
        calendar_exprs.period_end_expr(start, "year"),
        year_text,
        problem,
    )
