"""Calendars: week systems against epiweeks, DHIS2 ids against dhis2-core's parser rules."""

from __future__ import annotations

from datetime import date, timedelta

import epiweeks
import ibis  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epibridge.registry import calendar_exprs as cx
from epibridge.registry import calendars as cal
from epibridge.registry.calendars import Period

DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
SYSTEMS = st.sampled_from(["iso", "cdc", "tue", "wed", "thu", "fri", "sat"])


# --- week systems -------------------------------------------------------------------


def test_new_year_2026_is_cdc_week_53_of_2025_and_iso_week_1_of_2026() -> None:
    assert cal.week_of(date(2026, 1, 1), "cdc") == (2025, 53)
    assert cal.week_of(date(2026, 1, 1), "iso") == (2026, 1)


@pytest.mark.parametrize(("system", "oracle"), [("iso", "iso"), ("cdc", "cdc")])
@given(d=DATES)
def test_week_of_matches_epiweeks(system: str, oracle: str, d: date) -> None:
    week = epiweeks.Week.fromdate(d, system=oracle)
    assert cal.week_of(d, system) == (week.year, week.week)
    assert cal.week_start(week.year, week.week, system) == week.startdate()


@pytest.mark.parametrize("system", ["iso", "cdc"])
def test_weeks_in_year_matches_epiweeks(system: str) -> None:
    for year in range(1900, 2101):
        assert cal.weeks_in_year(year, system) == epiweeks.Year(year, system).totalweeks()


@given(d=DATES, system=SYSTEMS)
def test_week_contains_date_starts_on_system_weekday_and_has_four_days_in_its_year(
    d: date, system: str
) -> None:
    year, week = cal.week_of(d, system)
    start = cal.week_start(year, week, system)
    assert start <= d <= start + timedelta(days=6)
    assert start.weekday() == cal.week_start_weekday(system)
    days_in_year = sum((start + timedelta(days=i)).year == year for i in range(7))
    assert days_in_year >= 4
    assert 1 <= week <= cal.weeks_in_year(year, system) <= 53


def test_aliases_name_the_same_system() -> None:
    assert cal.canonical_system("mon") == "iso"
    assert cal.canonical_system("SUN") == "cdc"
    assert cal.week_of(date(2025, 6, 4), "sun") == cal.week_of(date(2025, 6, 4), "cdc")


@pytest.mark.parametrize("week", [0, 54])
def test_week_start_rejects_missing_weeks(week: int) -> None:
    with pytest.raises(ValueError, match=rf"week {week} does not exist in epi-year 2025"):
        cal.week_start(2025, week, "iso")


def test_week_53_exists_only_in_long_years() -> None:
    assert cal.week_start(2020, 53, "iso") == date(2020, 12, 28)
    with pytest.raises(ValueError, match=r"weeks run 1\.\.52"):
        cal.week_start(2025, 53, "iso")


def test_unknown_week_system_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown week system 'monday'"):
        cal.week_of(date(2025, 1, 1), "monday")


def test_peru_bulletin_weeks_are_cdc_weeks() -> None:
    # Boletín Epidemiológico del Perú: SE 10-2018 = 4-10 March 2018.
    assert cal.week_period(2018, 10, "cdc").start == date(2018, 3, 4)
    assert cal.week_period(2018, 10, "cdc").end == date(2018, 3, 10)


# --- periods and labels ---------------------------------------------------------------


def test_period_containing_returns_documented_labels() -> None:
    d = date(2025, 6, 4)
    labels = {t: cal.period_containing(d, t).label for t in ("day", "week", "month", "year")}
    assert labels == {"day": "2025-06-04", "week": "2025-W23", "month": "2025-06", "year": "2025"}
    assert cal.period_containing(d, "quarter").label == "2025-Q2"
    assert cal.period_containing(d, "bimonth").label == "2025-B03"
    assert cal.period_containing(d, "sixmonth", variant="April").label == "2025-AprilS1"
    assert cal.period_containing(date(2024, 12, 5), "quarter", variant="Nov").label == "2025-NovQ1"
    fy = cal.period_containing(date(2026, 2, 1), "financial_year", variant="July")
    assert (fy.label, fy.start, fy.end) == ("2025-FYJuly", date(2025, 7, 1), date(2026, 6, 30))


def test_financial_year_needs_a_variant() -> None:
    with pytest.raises(ValueError, match="no variant"):
        cal.period_containing(date(2025, 1, 1), "financial_year")


PERIOD_KINDS = st.sampled_from(
    [
        ("day", ""),
        ("week", ""),
        ("biweek", ""),
        ("month", ""),
        ("bimonth", ""),
        ("quarter", ""),
        ("quarter", "Nov"),
        ("sixmonth", ""),
        ("sixmonth", "April"),
        ("sixmonth", "Nov"),
        ("year", ""),
        ("financial_year", "April"),
        ("financial_year", "July"),
        ("financial_year", "Oct"),
        ("financial_year", "Nov"),
    ]
)


@given(d=DATES, kind=PERIOD_KINDS, system=SYSTEMS)
def test_label_and_dhis2_round_trip(d: date, kind: tuple[str, str], system: str) -> None:
    type_, variant = kind
    period = cal.period_containing(d, type_, system, variant)
    assert period.contains(d)
    assert cal.parse_label(period.label, period.calendar) == period
    if system != "tue":  # DHIS2 has no Tuesday weeks
        assert cal.parse_dhis2_period(cal.to_dhis2_period(period)) == period


def test_parse_label_rejects_unknown_shape() -> None:
    with pytest.raises(ValueError, match=r"'2025/01' is not an epibridge period label"):
        cal.parse_label("2025/01")
    with pytest.raises(ValueError, match="invalid period label '2025-13'"):
        cal.parse_label("2025-13")


def test_to_dhis2_rejects_periods_dhis2_lacks() -> None:
    tuesday_week = cal.week_period(2025, 1, "tue")
    with pytest.raises(ValueError, match="no weekly period type"):
        cal.to_dhis2_period(tuesday_week)
    odd = Period("month", date(2025, 1, 2), date(2025, 2, 1), "x", "gregorian")
    with pytest.raises(ValueError, match="is not a DHIS2 month period"):
        cal.to_dhis2_period(odd)


# --- DHIS2 ------------------------------------------------------------------------------

# (id, type, start, end) from the DHIS2 period format table and dhis2-core's
# DateUnitPeriodTypeParser.
DHIS2_CASES = [
    ("20250131", "day", date(2025, 1, 31), date(2025, 1, 31)),
    ("2025W23", "week", date(2025, 6, 2), date(2025, 6, 8)),
    ("2025WedW23", "week", date(2025, 6, 4), date(2025, 6, 10)),
    ("2025ThuW23", "week", date(2025, 6, 5), date(2025, 6, 11)),
    ("2025SatW23", "week", date(2025, 6, 7), date(2025, 6, 13)),
    ("2025SunW23", "week", date(2025, 6, 1), date(2025, 6, 7)),
    ("2025WedW1", "week", date(2025, 1, 1), date(2025, 1, 7)),
    ("2025BiW1", "biweek", date(2024, 12, 30), date(2025, 1, 12)),
    ("202501", "month", date(2025, 1, 1), date(2025, 1, 31)),
    ("202402", "month", date(2024, 2, 1), date(2024, 2, 29)),
    ("202501B", "bimonth", date(2025, 1, 1), date(2025, 2, 28)),
    ("2025Q1", "quarter", date(2025, 1, 1), date(2025, 3, 31)),
    ("2025NovQ1", "quarter", date(2024, 11, 1), date(2025, 1, 31)),
    ("2025NovQ4", "quarter", date(2025, 8, 1), date(2025, 10, 31)),
    ("2025S1", "sixmonth", date(2025, 1, 1), date(2025, 6, 30)),
    ("2025AprilS1", "sixmonth", date(2025, 4, 1), date(2025, 9, 30)),
    ("2025AprilS2", "sixmonth", date(2025, 10, 1), date(2026, 3, 31)),
    ("2025NovS1", "sixmonth", date(2024, 11, 1), date(2025, 4, 30)),
    ("2025", "year", date(2025, 1, 1), date(2025, 12, 31)),
    ("2025April", "financial_year", date(2025, 4, 1), date(2026, 3, 31)),
    ("2025July", "financial_year", date(2025, 7, 1), date(2026, 6, 30)),
    ("2025Oct", "financial_year", date(2025, 10, 1), date(2026, 9, 30)),
    ("2025Nov", "financial_year", date(2024, 11, 1), date(2025, 10, 31)),
]


@pytest.mark.parametrize(("text", "type_", "start", "end"), DHIS2_CASES)
def test_parse_dhis2_period(text: str, type_: str, start: date, end: date) -> None:
    period = cal.parse_dhis2_period(text)
    assert (period.type, period.start, period.end) == (type_, start, end)
    assert cal.to_dhis2_period(period) == text


def test_dhis2_weekly_wednesday_is_a_wednesday_week() -> None:
    period = cal.parse_dhis2_period("2025WedW23")
    assert period.start.weekday() == 2
    assert (period.label, period.calendar) == ("2025-W23", "wed")


@pytest.mark.parametrize("text", ["2025W54", "2025W0", "202513", "202507B", "2025BiW27", "2025x"])
def test_parse_dhis2_period_errors_name_text_and_shapes(text: str) -> None:
    with pytest.raises(ValueError, match=rf"{text}.*accepted shapes: Daily yyyyMMdd") as info:
        cal.parse_dhis2_period(text)
    assert "FinancialNov yyyyNov" in str(info.value)


def test_biweek_27_exists_in_53_week_years() -> None:
    period = cal.parse_dhis2_period("2020BiW27")
    assert (period.start, period.end) == (date(2020, 12, 28), date(2021, 1, 10))


# --- Buddhist Era and countries --------------------------------------------------------------


def test_buddhist_era() -> None:
    assert cal.gregorian_to_buddhist(2025) == 2568
    assert cal.buddhist_to_gregorian(2568) == 2025
    with pytest.raises(ValueError, match="1 April"):
        cal.gregorian_to_buddhist(1900)


def test_country_week_systems() -> None:
    assert cal.country_week_system("BRA") == "cdc"
    assert cal.country_week_system("per") == "cdc"
    for iso3 in ("KHM", "LAO", "THA", "VNM", "MMR", "TWN", "LKA", "PHL"):
        assert cal.country_week_system(iso3) in {"iso", "cdc", "tue", "wed", "thu", "fri", "sat"}
    with pytest.raises(ValueError, match="no week convention recorded for country 'XXX'"):
        cal.country_week_system("XXX")


def test_country_calendar_rows_are_valid_and_honest() -> None:
    import pycountry

    for iso3, row in cal.country_calendars().items():
        assert pycountry.countries.get(alpha_3=iso3) is not None, iso3
        assert row.status in {"documented", "assumed"}
        assert (row.status == "documented") == bool(row.source), iso3


# --- Ibis expressions ---------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(days=st.lists(DATES, min_size=1, max_size=60), system=SYSTEMS)
def test_ibis_week_expressions_agree_with_scalar(days: list[date], system: str) -> None:
    table = ibis.memtable({"d": days})
    expr = table.select(
        table.d,
        start=cx.week_start_expr(table.d, system),
        year=cx.week_year_expr(table.d, system),
        week=cx.week_number_expr(table.d, system),
        label=cx.week_label_expr(table.d, system),
        month_start=cx.month_start_expr(table.d),
    )
    expr = expr.mutate(
        from_year_week=cx.week_start_from_year_week_expr(expr.year, expr.week, system)
    )
    rows = ibis.duckdb.connect().to_pyarrow(expr).to_pylist()
    for row in rows:
        d = row["d"]
        period = cal.period_containing(d, "week", system)
        assert row["start"] == period.start
        assert (row["year"], row["week"]) == cal.week_of(d, system)
        assert row["label"] == period.label
        assert row["month_start"] == d.replace(day=1)
        assert row["from_year_week"] == period.start


@pytest.mark.parametrize(
    ("type_", "start"),
    [
        ("day", date(2024, 2, 29)),
        ("week", date(2024, 12, 30)),
        ("biweek", date(2024, 12, 30)),
        ("month", date(2024, 2, 1)),
        ("bimonth", date(2024, 11, 1)),
        ("quarter", date(2024, 11, 1)),
        ("sixmonth", date(2025, 10, 1)),
        ("year", date(2024, 1, 1)),
        ("financial_year", date(2024, 11, 1)),
    ],
)
def test_period_end_expr_matches_scalar(type_: str, start: date) -> None:
    variant = {"financial_year": "Nov", "quarter": "Nov", "sixmonth": "April"}.get(type_, "")
    expected = cal.period_containing(start, type_, "iso", variant)
    assert expected.start == start
    table = ibis.memtable({"start": [start]})
    result = ibis.duckdb.connect().to_pyarrow(
        table.select(end=cx.period_end_expr(table.start, type_))
    )
    assert result.to_pylist() == [{"end": expected.end}]
