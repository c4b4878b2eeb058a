"""Epidemiological calendars: week systems, reporting periods and DHIS2 period ids.

National nodes count cases in different week conventions (ISO Monday weeks, US CDC/MMWR
Sunday weeks, DHIS2 weeks starting Wednesday..Sunday) and ship DHIS2 period ids such as
``2025WedW23`` or ``2025NovQ1``. The hub must turn every one of them into one unambiguous
interval of days before it can add counts across borders, so this module is the single
place where those rules live. It is pure: no clock, no I/O except its own data file.

Week rule for every system: a week starts on the system's weekday and belongs to the year
that holds at least four of its days, so week 1 is the week containing 4 January (ISO 8601,
MMWR, and DHIS2's ``WeekFields.of(startDay, 4)``). A year therefore has 52 or 53 weeks.
See docs/registries/calendars.md for the label scheme.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources

# ibis ships no py.typed marker; unused-ignore keeps this clean once pyproject overrides it.
from epibridge.model.schema import PERIOD_TYPES as SCHEMA_PERIOD_TYPES

WeekSystem = str
"""``"iso"`` (Monday start), ``"cdc"`` (Sunday start, MMWR) or a start weekday
``"mon"``..``"sun"``; ``"mon"`` is the same system as ``"iso"`` and ``"sun"`` as ``"cdc"``."""

_WEEKDAY_BY_SYSTEM: dict[str, int] = {
    "iso": 0,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
    "cdc": 6,
}
#: Every week system name a profile may use.
WEEK_SYSTEMS: tuple[str, ...] = tuple(sorted(_WEEKDAY_BY_SYSTEM))

_SYSTEM_BY_WEEKDAY: dict[int, str] = {
    0: "iso",
    1: "tue",
    2: "wed",
    3: "thu",
    4: "fri",
    5: "sat",
    6: "cdc",
}

GREGORIAN = "gregorian"

# The period types of the data model: one list, defined with the schema.
PERIOD_TYPES: tuple[str, ...] = SCHEMA_PERIOD_TYPES

# Month-based types: how many months one period spans.
SPAN_MONTHS: dict[str, int] = {
    "month": 1,
    "bimonth": 2,
    "quarter": 3,
    "sixmonth": 6,
    "year": 12,
    "financial_year": 12,
}

# Variants of month-based types: variant name -> (first month, year offset). The offset is -1
# when DHIS2 names the cycle after the year in which it ends (its November types: 2025NovQ1
# starts 2024-11-01, 2025Nov starts 2024-11-01), 0 when it is named after its start year.
_VARIANTS: dict[str, dict[str, tuple[int, int]]] = {
    "month": {"": (1, 0)},
    "bimonth": {"": (1, 0)},
    "quarter": {"": (1, 0), "Nov": (11, -1)},
    "sixmonth": {"": (1, 0), "April": (4, 0), "Nov": (11, -1)},
    "year": {"": (1, 0)},
    "financial_year": {"April": (4, 0), "July": (7, 0), "Oct": (10, 0), "Nov": (11, -1)},
}

_MIN_YEAR = 2
_MAX_YEAR = 9998


@dataclass(frozen=True)
class Period:
    """One reporting period: an inclusive interval of days plus its canonical label.

    ``calendar`` is the canonical week system (``"iso"``, ``"cdc"``, ``"wed"``...) for
    week-based types and ``"gregorian"`` otherwise, so a week label is never read in the
    wrong system.
    """

    type: str
    start: date
    end: date
    label: str
    calendar: str

    def __post_init__(self) -> None:
        if self.type not in PERIOD_TYPES:
            raise ValueError(f"unknown period type {self.type!r}; expected one of {PERIOD_TYPES}")
        if self.end < self.start:
            raise ValueError(f"period {self.label!r} ends ({self.end}) before it starts")

    @property
    def days(self) -> int:
        """Number of days in the period, both ends included."""
        return (self.end - self.start).days + 1

    def contains(self, d: date) -> bool:
        """Whether ``d`` falls inside the period."""
        return self.start <= d <= self.end


# ---------------------------------------------------------------------------------------
# Week systems
# ---------------------------------------------------------------------------------------


def week_start_weekday(system: WeekSystem) -> int:
    """Python weekday (Monday=0) on which weeks of ``system`` start."""
    try:
        return _WEEKDAY_BY_SYSTEM[system.lower()]
    except KeyError:
        raise ValueError(
            f"unknown week system {system!r}; expected one of {sorted(_WEEKDAY_BY_SYSTEM)}"
        ) from None


def canonical_system(system: WeekSystem) -> str:
    """Canonical name of a week system (``"mon"`` -> ``"iso"``, ``"sun"`` -> ``"cdc"``)."""
    return _SYSTEM_BY_WEEKDAY[week_start_weekday(system)]


def _check_year(year: int) -> None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ValueError(f"year {year} is outside the supported range {_MIN_YEAR}..{_MAX_YEAR}")


def _start_of_week(d: date, weekday: int) -> date:
    return d - timedelta(days=(d.weekday() - weekday) % 7)


def _first_week_start(year: int, weekday: int) -> date:
    # Week 1 holds at least four days of the year, i.e. it is the week containing 4 January.
    return _start_of_week(date(year, 1, 4), weekday)


def week_of(d: date, system: WeekSystem) -> tuple[int, int]:
    """(epi-year, week) of ``d``; near New Year the epi-year can differ from ``d.year``."""
    weekday = week_start_weekday(system)
    _check_year(d.year)
    start = _start_of_week(d, weekday)
    # The fourth day of the week decides the year: it lies in the year owning >= 4 days.
    year = (start + timedelta(days=3)).year
    return year, (start - _first_week_start(year, weekday)).days // 7 + 1


def weeks_in_year(year: int, system: WeekSystem) -> int:
    """52 or 53: the number of weeks the epi-year ``year`` has in ``system``."""
    weekday = week_start_weekday(system)
    _check_year(year)
    return (_first_week_start(year + 1, weekday) - _first_week_start(year, weekday)).days // 7


def week_start(year: int, week: int, system: WeekSystem) -> date:
    """First day of week ``week`` of epi-year ``year``; ValueError if that week does not exist."""
    count = weeks_in_year(year, system)
    if not 1 <= week <= count:
        raise ValueError(
            f"week {week} does not exist in epi-year {year} of the {canonical_system(system)!r} "
            f"week system: weeks run 1..{count}"
        )
    return _first_week_start(year, week_start_weekday(system)) + timedelta(weeks=week - 1)


# ---------------------------------------------------------------------------------------
# Period construction
# ---------------------------------------------------------------------------------------


def day_period(d: date) -> Period:
    """The one-day period of ``d``."""
    _check_year(d.year)
    return Period("day", d, d, d.isoformat(), GREGORIAN)


def week_period(year: int, week: int, system: WeekSystem = "iso") -> Period:
    """Week ``week`` of epi-year ``year`` in ``system``; label ``2025-W03``."""
    start = week_start(year, week, system)
    label = f"{year:04d}-W{week:02d}"
    return Period("week", start, start + timedelta(days=6), label, canonical_system(system))


def biweeks_in_year(year: int) -> int:
    """26 or 27: bi-week n spans ISO weeks 2n-1 and 2n, so a 53-week year has 27."""
    return (weeks_in_year(year, "iso") + 1) // 2


def biweek_period(year: int, biweek: int) -> Period:
    """Bi-week ``biweek``: 14 days from the Monday of ISO week 2n-1 (DHIS2 BiWeekly).

    Bi-week 27 of a 53-week year runs into ISO week 1 of the next year, overlapping that
    year's bi-week 1; DHIS2 has the same overlap.
    """
    count = biweeks_in_year(year)
    if not 1 <= biweek <= count:
        raise ValueError(f"bi-week {biweek} does not exist in {year}: bi-weeks run 1..{count}")
    start = week_start(year, 2 * biweek - 1, "iso")
    return Period("biweek", start, start + timedelta(days=13), f"{year:04d}-BW{biweek:02d}", "iso")


def _add_months(first_of_month: date, months: int) -> date:
    total = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def _variant(type_: str, variant: str) -> tuple[int, int]:
    try:
        return _VARIANTS[type_][variant]
    except KeyError:
        known = [v or "(none)" for v in _VARIANTS.get(type_, {})]
        raise ValueError(
            f"period type {type_!r} has no variant {variant!r}; known: {known}"
        ) from None


def _cycle_label(type_: str, year: int, index: int, variant: str) -> str:
    labels: dict[str, Callable[[], str]] = {
        "month": lambda: f"{year:04d}-{index:02d}",
        "bimonth": lambda: f"{year:04d}-B{index:02d}",
        "quarter": lambda: f"{year:04d}-{variant}Q{index}",
        "sixmonth": lambda: f"{year:04d}-{variant}S{index}",
        "year": lambda: f"{year:04d}",
        "financial_year": lambda: f"{year:04d}-FY{variant}",
    }
    return labels[type_]()


def cycle_period(type_: str, year: int, index: int = 1, variant: str = "") -> Period:
    """A month-based period: ``index`` counts from 1 within the (variant's) year.

    ``variant`` selects the starting month: ``"Nov"`` quarters/six-months, ``"April"``
    six-months, ``"April"``/``"July"``/``"Oct"``/``"Nov"`` financial years (DHIS2 names).
    """
    first_month, year_offset = _variant(type_, variant)
    span = SPAN_MONTHS[type_]
    if not 1 <= index <= 12 // span:
        raise ValueError(f"{type_} number {index} does not exist: expected 1..{12 // span}")
    _check_year(year)
    start = _add_months(date(year + year_offset, first_month, 1), span * (index - 1))
    end = _add_months(start, span) - timedelta(days=1)
    return Period(type_, start, end, _cycle_label(type_, year, index, variant), GREGORIAN)


def _cycle_position(type_: str, d: date, variant: str) -> tuple[int, int]:
    """(labelled year, index) of the ``type_`` period of ``variant`` that contains ``d``."""
    first_month, year_offset = _variant(type_, variant)
    months = d.year * 12 + d.month - 1 - (year_offset * 12 + first_month - 1)
    return months // 12, (months % 12) // SPAN_MONTHS[type_] + 1


def period_containing(d: date, type: str, system: WeekSystem = "iso", variant: str = "") -> Period:
    """The ``type`` period that contains ``d``.

    ``system`` applies to weeks; ``variant`` to quarters, six-months and financial years
    (required for ``financial_year``: ``"April"``, ``"July"``, ``"Oct"`` or ``"Nov"``).
    """
    if type == "day":
        return day_period(d)
    if type == "week":
        return week_period(*week_of(d, system), system)
    if type == "biweek":
        year, week = week_of(d, "iso")
        return biweek_period(year, (week + 1) // 2)
    if type in SPAN_MONTHS:
        year, index = _cycle_position(type, d, variant)
        return cycle_period(type, year, index, variant)
    raise ValueError(f"unknown period type {type!r}; expected one of {PERIOD_TYPES}")


# ---------------------------------------------------------------------------------------
# Canonical labels
# ---------------------------------------------------------------------------------------

_LABEL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), "day"),
    (re.compile(r"(\d{4})-W(\d{2})"), "week"),
    (re.compile(r"(\d{4})-BW(\d{2})"), "biweek"),
    (re.compile(r"(\d{4})-(\d{2})"), "month"),
    (re.compile(r"(\d{4})-B(\d{2})"), "bimonth"),
    (re.compile(r"(\d{4})-(Nov|)Q([1-4])"), "quarter"),
    (re.compile(r"(\d{4})-(April|Nov|)S([12])"), "sixmonth"),
    (re.compile(r"(\d{4})"), "year"),
    (re.compile(r"(\d{4})-FY(April|July|Oct|Nov)"), "financial_year"),
)

LABEL_SHAPES = (
    "day 2025-01-31, week 2025-W03, biweek 2025-BW01, month 2025-01, bimonth 2025-B01, "
    "quarter 2025-Q1 / 2025-NovQ1, sixmonth 2025-S1 / 2025-AprilS1 / 2025-NovS1, year 2025, "
    "financial_year 2025-FYApril / 2025-FYJuly / 2025-FYOct / 2025-FYNov"
)


def parse_label(label: str, calendar: str = "iso") -> Period:
    """Inverse of ``Period.label``; ``calendar`` is the week system for week labels."""
    for pattern, type_ in _LABEL_PATTERNS:
        match = pattern.fullmatch(label)
        if match is None:
            continue
        groups = match.groups()
        try:
            return _period_from_groups(type_, groups, calendar)
        except ValueError as error:
            raise ValueError(f"invalid period label {label!r}: {error}") from None
    raise ValueError(f"{label!r} is not an epibridge period label; accepted shapes: {LABEL_SHAPES}")


def _period_from_groups(type_: str, groups: tuple[str, ...], calendar: str) -> Period:
    year = int(groups[0])
    if type_ == "day":
        return day_period(date(year, int(groups[1]), int(groups[2])))
    if type_ == "week":
        return week_period(year, int(groups[1]), calendar)
    if type_ == "biweek":
        return biweek_period(year, int(groups[1]))
    if type_ in ("month", "bimonth"):
        return cycle_period(type_, year, int(groups[1]))
    if type_ in ("quarter", "sixmonth"):
        return cycle_period(type_, year, int(groups[2]), groups[1])
    if type_ == "financial_year":
        return cycle_period(type_, year, 1, groups[1])
    return cycle_period("year", year)


# ---------------------------------------------------------------------------------------
# DHIS2 period ids
# ---------------------------------------------------------------------------------------

# DHIS2 weekly prefix (before "W") -> week system. Sunday weeks with the 4-day rule are the
# CDC/MMWR weeks, Monday weeks the ISO weeks.
_DHIS2_WEEK_PREFIX: dict[str, str] = {
    "": "iso",
    "Wed": "wed",
    "Thu": "thu",
    "Fri": "fri",
    "Sat": "sat",
    "Sun": "cdc",
}
_PREFIX_BY_SYSTEM: dict[str, str] = {v: k for k, v in _DHIS2_WEEK_PREFIX.items()}

_DHIS2_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d{4})(\d{2})(\d{2})"), "day"),
    (re.compile(r"(\d{4})(Wed|Thu|Fri|Sat|Sun|)W(\d{1,2})"), "week"),
    (re.compile(r"(\d{4})BiW(\d{1,2})"), "biweek"),
    (re.compile(r"(\d{4})(\d{2})"), "month"),
    (re.compile(r"(\d{4})(\d{2})B"), "bimonth"),
    (re.compile(r"(\d{4})(Nov|)Q([1-4])"), "quarter"),
    (re.compile(r"(\d{4})(April|Nov|)S([12])"), "sixmonth"),
    (re.compile(r"(\d{4})"), "year"),
    (re.compile(r"(\d{4})(April|July|Oct|Nov)"), "financial_year"),
)

DHIS2_SHAPES = (
    "Daily yyyyMMdd (20250131), Weekly yyyyWn (2025W23), WeeklyWednesday yyyyWedWn, "
    "WeeklyThursday yyyyThuWn, WeeklyFriday yyyyFriWn, WeeklySaturday yyyySatWn, "
    "WeeklySunday yyyySunWn, BiWeekly yyyyBiWn (2025BiW1), Monthly yyyyMM (202501), "
    "BiMonthly yyyyMMB (202501B), Quarterly yyyyQn (2025Q1), QuarterlyNov yyyyNovQn, "
    "SixMonthly yyyySn (2025S1), SixMonthlyApril yyyyAprilSn, SixMonthlyNov yyyyNovSn, "
    "Yearly yyyy (2025), FinancialApril yyyyApril, FinancialJuly yyyyJuly, "
    "FinancialOct yyyyOct, FinancialNov yyyyNov"
)


def parse_dhis2_period(text: str) -> Period:
    """The period a DHIS2 period id denotes (every DHIS2 fixed period type).

    Raises ValueError naming ``text`` and listing the accepted shapes when it is not one.
    """
    for pattern, type_ in _DHIS2_PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        groups = match.groups()
        try:
            if type_ == "week":
                return week_period(int(groups[0]), int(groups[2]), _DHIS2_WEEK_PREFIX[groups[1]])
            return _period_from_groups(type_, groups, "iso")
        except ValueError as error:
            raise ValueError(
                f"invalid DHIS2 period {text!r}: {error}; accepted shapes: {DHIS2_SHAPES}"
            ) from None
    raise ValueError(f"{text!r} is not a DHIS2 period id; accepted shapes: {DHIS2_SHAPES}")


def _matching_variant(period: Period) -> str:
    for variant, (first_month, _) in _VARIANTS[period.type].items():
        if (period.start.month - first_month) % SPAN_MONTHS[period.type] == 0:
            return variant
    raise ValueError(f"period {period.label!r} does not start on a {period.type} boundary")


def _rebuild(period: Period) -> tuple[Period, str]:
    """The canonical period equal to ``period``'s start, and its DHIS2 id."""
    start = period.start
    if period.type == "day":
        return day_period(start), f"{start.year:04d}{start.month:02d}{start.day:02d}"
    if period.type == "week":
        year, week = week_of(start, period.calendar)
        prefix = _PREFIX_BY_SYSTEM.get(canonical_system(period.calendar))
        if prefix is None:
            raise ValueError(f"DHIS2 has no weekly period type starting on {period.calendar!r}")
        return week_period(year, week, period.calendar), f"{year}{prefix}W{week}"
    if period.type == "biweek":
        year, week = week_of(start, "iso")
        return biweek_period(year, (week + 1) // 2), f"{year}BiW{(week + 1) // 2}"
    variant = _matching_variant(period)
    year, index = _cycle_position(period.type, start, variant)
    ids = {
        "month": f"{year:04d}{index:02d}",
        "bimonth": f"{year:04d}{index:02d}B",
        "quarter": f"{year:04d}{variant}Q{index}",
        "sixmonth": f"{year:04d}{variant}S{index}",
        "year": f"{year:04d}",
        "financial_year": f"{year:04d}{variant}",
    }
    return cycle_period(period.type, year, index, variant), ids[period.type]


def to_dhis2_period(period: Period) -> str:
    """DHIS2 period id of ``period``; ValueError when DHIS2 has no such period."""
    canonical, dhis2_id = _rebuild(period)
    if (canonical.start, canonical.end) != (period.start, period.end):
        raise ValueError(
            f"period {period.label!r} ({period.start}..{period.end}) is not a DHIS2 "
            f"{period.type} period"
        )
    return dhis2_id


# ---------------------------------------------------------------------------------------
# Thai Buddhist Era and national conventions
# ---------------------------------------------------------------------------------------

_BE_OFFSET = 543
# Thailand moved New Year from 1 April to 1 January in 1941 (BE 2484); before that a BE year
# straddled two CE years and no whole-year conversion exists.
_FIRST_CE_YEAR_JANUARY_BE = 1941


def gregorian_to_buddhist(year: int) -> int:
    """Thai Buddhist Era year of CE ``year`` (BE = CE + 543), valid from 1941."""
    if year < _FIRST_CE_YEAR_JANUARY_BE:
        raise ValueError(
            f"CE {year}: before 1941 Thai BE years began on 1 April, so no whole-year mapping"
        )
    return year + _BE_OFFSET


def buddhist_to_gregorian(year: int) -> int:
    """CE year of Thai Buddhist Era ``year`` (CE = BE - 543), valid from BE 2484 (1941)."""
    if year < _FIRST_CE_YEAR_JANUARY_BE + _BE_OFFSET:
        raise ValueError(
            f"BE {year}: before BE 2484 (1941) Thai years began on 1 April, so no whole-year "
            "mapping"
        )
    return year - _BE_OFFSET


@dataclass(frozen=True)
class CountryCalendar:
    """A country's own surveillance-week convention and how sure we are of it."""

    iso3: str
    week_system: str
    status: str  # "documented" or "assumed"
    source: str
    notes: str


@cache
def country_calendars() -> dict[str, CountryCalendar]:
    """Every row of data/calendars.csv, keyed by ISO 3166-1 alpha-3 code."""
    text = resources.files(__package__).joinpath("data/calendars.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    result: dict[str, CountryCalendar] = {}
    for row in rows:
        entry = CountryCalendar(
            iso3=row["iso3"],
            week_system=canonical_system(row["week_system"]),
            status=row["status"],
            source=row["source"],
            notes=row["notes"],
        )
        result[entry.iso3] = entry
    return result


def country_week_system(iso3: str) -> WeekSystem:
    """The week system a country's surveillance uses (see data/calendars.csv notes)."""
    calendars = country_calendars()
    try:
        return calendars[iso3.upper()].week_system
    except KeyError:
        raise ValueError(
            f"no week convention recorded for country {iso3!r}; known: {sorted(calendars)}"
        ) from None
