"""A seeded, synthetic Mekong dengue scenario: weekly counts per province, planted outbreaks.

Why: Cambodia, Lao PDR, Thailand, Viet Nam and Myanmar publish no weekly dengue counts by
province, yet the demo must show the hub finding an outbreak that straddles the
Cambodia-Viet Nam border. This module makes such data, deterministically: the same
``today``, ``seed`` and ``years`` always give the same table. It is pure (no clock, no
I/O besides the registries' own files) and every place, population and validity date
comes from the geography registry. The numbers and their sources are in docs/scenario.md.

The model, per country and province (admin level 1), per ISO week::

    expected = population x incidence / 100,000 x 7 / 365.25
               x season(week) x country_year(week) x province x province_year(week)
    cases    = NegativeBinomial(mean = expected, size = DISPERSION) + planted
    deaths   = Binomial(cases, case fatality rate)

``season`` is a von Mises curve peaking on the country's ``peak_day``, with mean 1 over
the year. ``country_year`` and ``province_year`` are log-normal factors (mean 1) drawn
for each year at 1 July, the season's middle, and interpolated linearly between, so that
epidemic years come and go without a jump at New Year. ``province`` is a fixed
log-normal factor (some provinces report more than others).

Units follow the registry's validity dates. The latent ``expected`` lives in the units
valid at the start; a week is reported in the units valid on its Thursday (the day that
places an ISO week in its year and month), and the expected counts of retired units are
carried into their successors with the registry's crosswalk weights. So Viet Nam reports
in its 63 provinces up to the week of 23 June 2025 and in its 34 units from the week of
30 June 2025 (Thursday 3 July) on, and the merged units continue the old provinces'
levels.

Planted outbreaks (:data:`PLANS`) add a fixed number of cases, a multiple of the cell's
expected count (with a floor for small provinces), in the last weeks before ``today``.

Beside the counts, each country reports how completely its reporting sites reported
(``reporting``, :data:`REPORTING_SCHEMA`, the hub's completeness) and how many people live
in each unit (``population``, :data:`POPULATION_SCHEMA`, the denominators)::

    sites    = max(1, round(population / PEOPLE_PER_SITE))       one per 100,000 people
    share    ~ Beta(completeness x C, (1 - completeness) x C)     per province, C = 40
    received = max(1, Binomial(sites, share))                     per province and week
    on_time  = Binomial(received, timeliness)

with ``completeness`` and ``timeliness`` per country (:data:`REPORTING`: Thailand high,
Viet Nam and Cambodia about 0.9, Lao PDR and Myanmar lower). A province always has at
least one report, so no count row is ever "not reported". The reporting is drawn from its
own random stream (``default_rng((seed, REPORTING_STREAM))``), after and apart from the
counts' stream: adding it left the counts of every seed exactly as they were.
``disease`` is null (a weekly zero-report form covering every notifiable disease) for
Cambodia and Lao PDR and ``DENGUE`` (a dengue report form) for the others. Population
per unit and year (the units valid on 1 July, mid-year) is the registry's figure of the
nearest year it holds, and its ``source`` says which year that was.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from epibridge.model.errors import EpibridgeError
from epibridge.registry import geography

__all__ = [
    "COUNTRIES",
    "COUNTS_SCHEMA",
    "DISPERSION",
    "PARAMETERS",
    "PEOPLE_PER_SITE",
    "PLANS",
    "POPULATION_SCHEMA",
    "PROVINCE_SD",
    "PROVINCE_YEAR_SD",
    "REPORTING",
    "REPORTING_SCHEMA",
    "REPORTING_STREAM",
    "SEASONALITY",
    "YEAR_SD",
    "CountryParameters",
    "OutbreakPlan",
    "PlantedOutbreak",
    "ReportingParameters",
    "Scenario",
    "generate",
    "reporting_units",
    "week_starts",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The scenario's countries, in the order they are generated (the order fixes the draws).
COUNTRIES: Final = ("KHM", "LAO", "THA", "VNM", "MMR")


@dataclass(frozen=True)
class CountryParameters:
    """Country-level figures, each an order of magnitude from WHO reports (docs/scenario.md).

    ``incidence``: reported dengue cases per 100,000 people per year, averaged over good
    and bad years; ``peak_day``: day of the year (1-366) of the seasonal peak; ``cfr``:
    deaths per reported case.
    """

    incidence: float
    peak_day: int
    cfr: float


PARAMETERS: Final[dict[str, CountryParameters]] = {
    "KHM": CountryParameters(incidence=150.0, peak_day=196, cfr=0.0015),
    "LAO": CountryParameters(incidence=300.0, peak_day=210, cfr=0.0010),
    "THA": CountryParameters(incidence=100.0, peak_day=196, cfr=0.0010),
    "VNM": CountryParameters(incidence=200.0, peak_day=220, cfr=0.0004),
    "MMR": CountryParameters(incidence=50.0, peak_day=196, cfr=0.0040),
}

#: Concentration of the von Mises seasonal curve: peak / trough = exp(2 x SEASONALITY).
SEASONALITY: Final = 1.2
#: Standard deviation of the log of the country-year factor (epidemic and quiet years).
YEAR_SD: Final = 0.5
#: Standard deviation of the log of the fixed province factor.
PROVINCE_SD: Final = 0.35
#: Standard deviation of the log of the province-year factor.
PROVINCE_YEAR_SD: Final = 0.15
#: Negative binomial size: variance = mean + mean^2 / DISPERSION.
DISPERSION: Final = 12.0

_DAYS_PER_YEAR: Final = 365.25


@dataclass(frozen=True)
class ReportingParameters:
    """How a country's reporting sites report (docs/scenario.md, "Reporting").

    ``completeness``: the mean share of the weekly reports owed that arrive;
    ``timeliness``: the share of those that arrive on time; ``disease``: what the weekly
    form covers, ``None`` for every notifiable disease (a zero-report form), else one code.
    """

    completeness: float
    timeliness: float
    disease: str | None


REPORTING: Final[dict[str, ReportingParameters]] = {
    "KHM": ReportingParameters(completeness=0.90, timeliness=0.85, disease=None),
    "LAO": ReportingParameters(completeness=0.80, timeliness=0.70, disease=None),
    "THA": ReportingParameters(completeness=0.97, timeliness=0.92, disease="DENGUE"),
    "VNM": ReportingParameters(completeness=0.92, timeliness=0.85, disease="DENGUE"),
    "MMR": ReportingParameters(completeness=0.75, timeliness=0.65, disease="DENGUE"),
}
#: People per reporting site (health facility or district office sending the weekly form).
PEOPLE_PER_SITE: Final = 100_000
#: Beta concentration of the provinces' completeness around their country's.
COMPLETENESS_CONCENTRATION: Final = 40.0
#: The reporting's random stream: ``default_rng((seed, REPORTING_STREAM))``, apart from
#: the counts' ``default_rng(seed)``.
REPORTING_STREAM: Final = 1


@dataclass(frozen=True)
class OutbreakPlan:
    """How one outbreak is planted.

    ``anchor`` is the province it starts in; ``partners`` a country whose provinces that
    border the anchor (geography registry adjacency, units valid in the outbreak's weeks)
    join it. The outbreak ends ``weeks_before_end`` weeks before the scenario's last week
    and lasts ``len(multipliers)`` weeks; in week i each of its provinces gets
    ``round(multipliers[i] x max(expected, floor))`` extra cases.
    """

    id: str
    anchor: str
    partners: str | None
    weeks_before_end: int
    multipliers: tuple[float, ...]
    floor: float
    what: str


#: The planted outbreaks. All end within the last 8 weeks before ``today``.
PLANS: Final[tuple[OutbreakPlan, ...]] = (
    OutbreakPlan(
        id="MEKONG-XB-1",
        anchor="KH-20",
        partners="VNM",
        weeks_before_end=0,
        multipliers=(1.5, 2.0, 2.5, 3.0),
        floor=10.0,
        what="cross-border outbreak",
    ),
    OutbreakPlan(
        id="MEKONG-LAO-1",
        anchor="LA-SV",
        partners=None,
        weeks_before_end=1,
        multipliers=(1.0, 2.0, 3.0, 2.0),
        floor=5.0,
        what="outbreak",
    ),
    OutbreakPlan(
        id="MEKONG-THA-1",
        anchor="TH-40",
        partners=None,
        weeks_before_end=0,
        multipliers=(2.0, 3.0, 4.0),
        floor=8.0,
        what="outbreak",
    ),
)


@dataclass(frozen=True)
class PlantedOutbreak:
    """An outbreak in the data: where, when (ISO week starts, inclusive), how many extra cases."""

    id: str
    description: str
    countries: tuple[str, ...]
    areas: tuple[str, ...]
    first_week: date
    last_week: date
    extra_cases: int


COUNTS_SCHEMA: Final = pa.schema(
    [
        pa.field("country", pa.string(), nullable=False),
        pa.field("area", pa.string(), nullable=False),
        pa.field("week_start", pa.date32(), nullable=False),
        pa.field("cases", pa.int64(), nullable=False),
        pa.field("deaths", pa.int64(), nullable=False),
        pa.field("planted", pa.int64(), nullable=False),
    ],
    metadata={"name": "mekong-scenario-counts", "synthetic": "true"},
)


REPORTING_SCHEMA: Final = pa.schema(
    [
        pa.field("country", pa.string(), nullable=False),
        pa.field("area", pa.string(), nullable=False),
        pa.field("week_start", pa.date32(), nullable=False),
        pa.field("disease", pa.string()),  # null: every notifiable disease
        pa.field("reports_expected", pa.int64(), nullable=False),
        pa.field("reports_received", pa.int64(), nullable=False),
        pa.field("reports_on_time", pa.int64(), nullable=False),
    ],
    metadata={"name": "mekong-scenario-reporting", "synthetic": "true"},
)

POPULATION_SCHEMA: Final = pa.schema(
    [
        pa.field("country", pa.string(), nullable=False),
        pa.field("area", pa.string(), nullable=False),
        pa.field("year", pa.int64(), nullable=False),
        pa.field("population", pa.int64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ],
    metadata={"name": "mekong-scenario-population"},
)


@dataclass(frozen=True, eq=False)
class Scenario:
    """The true weekly counts (``counts``, :data:`COUNTS_SCHEMA`), the planted outbreaks,
    the weekly reporting (``reporting``, :data:`REPORTING_SCHEMA`) and the population per
    unit and year (``population``, :data:`POPULATION_SCHEMA`).

    ``counts`` has one row per country, reporting unit and ISO week (``week_start`` is the
    Monday); ``cases`` includes the ``planted`` cases. ``reporting`` has a row for each
    row of ``counts``, in the same order.
    """

    today: date
    seed: int
    weeks: tuple[date, ...]
    counts: pa.Table
    outbreaks: tuple[PlantedOutbreak, ...]
    reporting: pa.Table
    population: pa.Table

    def country(
        self, iso3: str, table: Literal["counts", "reporting", "population"] = "counts"
    ) -> pa.Table:
        """The rows of one country (of ``counts``, ``reporting`` or ``population``)."""
        whole: pa.Table = getattr(self, table)
        return whole.filter(pc.equal(whole["country"], iso3))


# ----------------------------------------------------------------------------- weeks


def week_starts(today: date, years: int) -> tuple[date, ...]:
    """Mondays of the ISO weeks of the scenario, oldest first.

    The last is the last complete week before ``today`` (a week ending on the Sunday
    before, or on ``today`` itself being excluded); there are ``round(years x 52.18)``.
    """
    if years < 1:
        raise EpibridgeError(f"a scenario needs at least 1 year of weeks, not {years}")
    last = today - timedelta(days=today.weekday() + 7)
    count = round(years * _DAYS_PER_YEAR / 7)
    return tuple(last - timedelta(weeks=count - 1 - i) for i in range(count))


def reporting_units(country: str, week_start: date) -> list[str]:
    """Admin-1 codes a country reports in for the ISO week starting ``week_start``.

    The units valid on the week's Thursday, sorted.
    """
    return list(_units_on(country, week_start + timedelta(days=3)))


@functools.cache
def _units_on(country: str, day: date) -> tuple[str, ...]:
    return tuple(
        sorted(u.code for u in geography.units(country) if u.level == 1 and u.valid_on(day))
    )


# ------------------------------------------------------------------------ baseline


@dataclass(frozen=True)
class _Expected:
    """One country's expected counts: per regime (run of weeks with one set of units)."""

    country: str
    regimes: tuple[tuple[tuple[str, ...], range, FloatArray], ...]

    def cell(self, area: str, t: int) -> float:
        for codes, weeks, mu in self.regimes:
            if t in weeks and area in codes:
                return float(mu[codes.index(area), t - weeks.start])
        raise EpibridgeError(f"{area} does not report in week {t} of the {self.country} scenario")


def _population(country: str, codes: Sequence[str], year: int) -> FloatArray:
    return np.array([r.population for r in _nearest(country, codes, year)], dtype=np.float64)


def _nearest(country: str, codes: Sequence[str], year: int) -> list[geography.PopulationRow]:
    """Each unit's registry population figure of the year nearest ``year`` (the later of two)."""
    rows: dict[str, list[geography.PopulationRow]] = {}
    for r in geography.population(country):
        rows.setdefault(r.code, []).append(r)
    missing = [c for c in codes if c not in rows]
    if missing:
        raise EpibridgeError(
            f"the geography registry has no population for {', '.join(missing)} "
            f"({country}); the scenario cannot size their counts"
        )
    return [min(rows[c], key=lambda r: (abs(r.year - year), -r.year)) for c in codes]


def _log_normal(rng: np.random.Generator, sd: float, size: tuple[int, ...]) -> FloatArray:
    """Log-normal factors with mean 1."""
    return np.exp(rng.normal(-(sd**2) / 2, sd, size=size))


def _yearly(
    rng: np.random.Generator, sd: float, rows: int, days: FloatArray, years: range
) -> FloatArray:
    """Factors drawn at 1 July of each year and interpolated linearly to ``days``."""
    anchors = np.array([date(y, 7, 1).toordinal() for y in years], dtype=np.float64)
    values = _log_normal(rng, sd, (rows, len(years)))
    return np.vstack([np.interp(days, anchors, v) for v in values])


def _expected(country: str, weeks: Sequence[date], rng: np.random.Generator) -> _Expected:
    p = PARAMETERS[country]
    thursdays = [w + timedelta(days=3) for w in weeks]
    days = np.array([d.toordinal() for d in thursdays], dtype=np.float64)
    base = reporting_units(country, weeks[0])
    middle = thursdays[len(thursdays) // 2].year
    pop = _population(country, base, middle)
    day_of_year = np.array([d.timetuple().tm_yday for d in thursdays], dtype=np.float64)
    angle = 2 * np.pi * (day_of_year - p.peak_day) / _DAYS_PER_YEAR
    season = np.exp(SEASONALITY * np.cos(angle)) / float(np.i0(SEASONALITY))
    years = range(thursdays[0].year - 1, thursdays[-1].year + 2)
    country_year = _yearly(rng, YEAR_SD, 1, days, years)[0]
    province = _log_normal(rng, PROVINCE_SD, (len(base),))
    province_year = _yearly(rng, PROVINCE_YEAR_SD, len(base), days, years)
    weekly = pop * p.incidence / 100_000 * 7 / _DAYS_PER_YEAR
    mu = (weekly * province)[:, None] * province_year * (season * country_year)[None, :]

    regimes = []
    for codes, span in _regimes(country, weeks):
        mapping = _mapping(country, base, codes, thursdays[span.start])
        regimes.append((codes, span, mapping @ mu[:, span.start : span.stop]))
    return _Expected(country, tuple(regimes))


def _regimes(country: str, weeks: Sequence[date]) -> list[tuple[tuple[str, ...], range]]:
    """Runs of weeks reported in one set of units: (the units, the week indices)."""
    out: list[tuple[tuple[str, ...], range]] = []
    start = 0
    for t in range(1, len(weeks) + 1):
        if t < len(weeks) and reporting_units(country, weeks[t]) == reporting_units(
            country, weeks[start]
        ):
            continue
        out.append((tuple(reporting_units(country, weeks[start])), range(start, t)))
        start = t
    return out


def _mapping(country: str, base: Sequence[str], codes: Sequence[str], on: date) -> FloatArray:
    """Weights carrying the starting units' expected counts into the units valid ``on``."""
    index = {c: i for i, c in enumerate(codes)}
    weights = np.zeros((len(codes), len(base)), dtype=np.float64)
    for j, old in enumerate(base):
        for new, share in geography.to_current(old, on):
            if new not in index:
                raise EpibridgeError(
                    f"the geography crosswalk maps {old} to {new}, which is not an admin-1 "
                    f"unit of {country} on {on}"
                )
            weights[index[new], j] += share
    orphans = [c for c, row in zip(codes, weights, strict=True) if not row.any()]
    if orphans:
        raise EpibridgeError(
            f"no crosswalk leads from the {country} units of the scenario's first week to "
            f"{', '.join(orphans)} (valid on {on}); the registry lacks their predecessors"
        )
    return weights


# ------------------------------------------------------------------------ outbreaks


def _plant(
    plan: OutbreakPlan, weeks: Sequence[date], expected: dict[str, _Expected]
) -> tuple[PlantedOutbreak, dict[tuple[str, int], int]]:
    anchor = geography.unit(plan.anchor)
    length = len(plan.multipliers)
    last = len(weeks) - 1 - plan.weeks_before_end
    first = last - length + 1
    if plan.weeks_before_end + length > 8 or first < 0:
        raise EpibridgeError(f"outbreak {plan.id} must lie within the scenario's last 8 weeks")
    span = range(first, last + 1)
    for t in span:
        if plan.anchor not in reporting_units(anchor.country, weeks[t]):
            raise EpibridgeError(f"{plan.anchor} is not an admin-1 unit in week {weeks[t]}")
    areas = [plan.anchor]
    if plan.partners is not None:
        partners = sorted(
            other
            for a in geography.adjacency(cross_border_only=True)
            if plan.anchor in (a.code_a, a.code_b)
            for other in [a.code_b if a.code_a == plan.anchor else a.code_a]
            if geography.unit(other).country == plan.partners
            and all(other in reporting_units(plan.partners, weeks[t]) for t in span)
        )
        if not partners:
            raise EpibridgeError(
                f"the geography registry knows no {plan.partners} unit bordering "
                f"{plan.anchor} in the weeks of outbreak {plan.id}"
            )
        areas += partners
    extra: dict[tuple[str, int], int] = {}
    for area in areas:
        country = geography.unit(area).country
        for i, t in enumerate(span):
            mu = expected[country].cell(area, t)
            extra[(area, t)] = round(plan.multipliers[i] * max(mu, plan.floor))
    countries = tuple(dict.fromkeys(geography.unit(a).country for a in areas))
    names = " and ".join(
        f"{geography.unit(a).name} ({a}, {geography.unit(a).country})" for a in areas
    )
    outbreak = PlantedOutbreak(
        id=plan.id,
        description=f"{plan.what} in {names}, {length} weeks",
        countries=countries,
        areas=tuple(areas),
        first_week=weeks[first],
        last_week=weeks[last],
        extra_cases=sum(extra.values()),
    )
    return outbreak, extra


# ------------------------------------------------------- reporting and population


def _sites(country: str, codes: Sequence[str], year: int) -> IntArray:
    """Reporting sites per unit: one per PEOPLE_PER_SITE people, at least one."""
    people = _population(country, codes, year)
    return np.maximum(1, np.rint(people / PEOPLE_PER_SITE)).astype(np.int64)


def _reporting(weeks: Sequence[date], rng: np.random.Generator) -> pa.Table:
    """Reports expected, received and on time, a row per row of the counts (same order)."""
    middle = (weeks[len(weeks) // 2] + timedelta(days=3)).year
    columns: dict[str, list[object]] = {f.name: [] for f in REPORTING_SCHEMA}
    for c in COUNTRIES:
        p = REPORTING[c]
        for codes, span in _regimes(c, weeks):
            sites = _sites(c, codes, middle)
            a = p.completeness * COMPLETENESS_CONCENTRATION
            share = rng.beta(a, COMPLETENESS_CONCENTRATION - a, size=len(codes))
            shape = (len(span), len(codes))  # week-major, as the counts
            expected = np.broadcast_to(sites, shape)
            received = np.maximum(1, rng.binomial(expected, np.broadcast_to(share, shape)))
            on_time = rng.binomial(received, p.timeliness)
            n = expected.size
            columns["country"] += [c] * n
            columns["area"] += list(codes) * len(span)
            columns["week_start"] += [weeks[t] for t in span for _ in codes]
            columns["disease"] += [p.disease] * n
            columns["reports_expected"] += expected.ravel().tolist()
            columns["reports_received"] += received.ravel().tolist()
            columns["reports_on_time"] += on_time.ravel().tolist()
    return pa.table(columns, schema=REPORTING_SCHEMA)


def _population_table(weeks: Sequence[date]) -> pa.Table:
    """Population per unit and year of the scenario's weeks, in the units valid on 1 July
    (mid-year); the registry's figure of the nearest year, the source saying which."""
    first, last = (weeks[0] + timedelta(days=3)).year, (weeks[-1] + timedelta(days=3)).year
    columns: dict[str, list[object]] = {f.name: [] for f in POPULATION_SCHEMA}
    for c in COUNTRIES:
        for year in range(first, last + 1):
            codes = _units_on(c, date(year, 7, 1))
            for code, row in zip(codes, _nearest(c, codes, year), strict=True):
                held = "" if row.year == year else f"; the {row.year} figure, nearest year held"
                columns["country"].append(c)
                columns["area"].append(code)
                columns["year"].append(year)
                columns["population"].append(row.population)
                columns["source"].append(f"{row.source}{held}")
    return pa.table(columns, schema=POPULATION_SCHEMA)


# ------------------------------------------------------------------------- generate


def generate(today: date, seed: int = 2026, years: int = 6) -> Scenario:
    """The scenario for ``today``: ``years`` of ISO weeks ending before it (module docstring)."""
    weeks = week_starts(today, years)
    rng = np.random.default_rng(seed)
    expected = {c: _expected(c, weeks, rng) for c in COUNTRIES}
    outbreaks = []
    extra: dict[tuple[str, int], int] = {}
    for plan in PLANS:
        outbreak, cells = _plant(plan, weeks, expected)
        outbreaks.append(outbreak)
        for key, n in cells.items():
            extra[key] = extra.get(key, 0) + n

    country_col: list[str] = []
    area_col: list[str] = []
    week_col: list[date] = []
    mus: list[float] = []
    planted: list[int] = []
    cfrs: list[float] = []
    for c in COUNTRIES:
        for codes, span, mu in expected[c].regimes:
            for k, t in enumerate(span):
                for i, code in enumerate(codes):
                    country_col.append(c)
                    area_col.append(code)
                    week_col.append(weeks[t])
                    mus.append(float(mu[i, k]))
                    planted.append(extra.get((code, t), 0))
                    cfrs.append(PARAMETERS[c].cfr)
    mean = np.array(mus, dtype=np.float64)
    noise = rng.negative_binomial(DISPERSION, DISPERSION / (DISPERSION + mean))
    cases = noise.astype(np.int64) + np.array(planted, dtype=np.int64)
    deaths = rng.binomial(cases, np.array(cfrs, dtype=np.float64)).astype(np.int64)
    counts = pa.table(
        {
            "country": country_col,
            "area": area_col,
            "week_start": week_col,
            "cases": cases,
            "deaths": deaths,
            "planted": np.array(planted, dtype=np.int64),
        },
        schema=COUNTS_SCHEMA,
    )
    reporting = _reporting(weeks, np.random.default_rng((seed, REPORTING_STREAM)))
    return Scenario(
        today, seed, weeks, counts, tuple(outbreaks), reporting, _population_table(weeks)
    )
