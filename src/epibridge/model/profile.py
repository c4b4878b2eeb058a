"""A mapping profile: how one national format maps onto the common data model.

Profiles are TOML files (``docs/profiles.md``); ``epibridge.profiles`` loads and checks
them and builds these frozen values. Nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FORMATS = ("delimited", "excel", "dhis2-json", "dhis2-csv", "fhir-measurereport", "fhir-bundle")
DATASETS = ("cases", "counts", "reporting", "denominators")

#: Measure names a long format may map to, per dataset (``[measures.map]``).
MEASURES = {
    "cases": ("cases", "deaths"),
    "counts": ("cases", "deaths"),
    "reporting": ("reports_expected", "reports_received", "reports_on_time"),
}


@dataclass(frozen=True)
class FieldMap:
    """How one model field is filled: from a source ``column`` or a constant ``value``.

    ``codes`` maps source values (compared after trimming; case-insensitively unless
    ``case_sensitive``) to model codes; a value absent from a non-empty map is an unknown
    code and is quarantined. ``formats`` are strftime-style date formats tried in order.
    ``missing`` lists source spellings of "no value" for this field (besides empty).
    """

    target: str
    column: str | None = None
    value: str | None = None
    codes: Mapping[str, str] = field(default_factory=dict)
    codes_from: str | None = None
    case_sensitive: bool = False
    formats: tuple[str, ...] = ()
    required: bool = False
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeriodSpec:
    """Where the reporting period comes from.

    Exactly one source: ``from_date`` (a model date field such as ``date_onset``, falling
    back through ``fallback_dates``), ``date_column`` (a source column holding a date, read
    with ``date_formats``, for aggregates dated by the first day of their period),
    ``year`` + ``week``, ``year`` + ``month``, ``year``
    alone, a DHIS2 period string column ``dhis2``, or explicit ``start`` + ``end`` columns.
    """

    type: str = "week"
    calendar: str = "iso"
    from_date: str | None = None
    date_column: str | None = None
    date_formats: tuple[str, ...] = ()
    fallback_dates: tuple[str, ...] = ()
    year: str | None = None
    week: str | None = None
    month: str | None = None
    dhis2: str | None = None
    start: str | None = None
    end: str | None = None
    buddhist_era: bool = False
    month_names: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AreaSpec:
    """How records are placed: source columns from level 1 down, by name or by code."""

    columns: tuple[str, ...] = ()
    match: str = "name"
    codes: Mapping[str, str] = field(default_factory=dict)
    crosswalk: bool = False
    required_level: int = 0
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureSpec:
    """Long formats (DHIS2, FHIR): one value per row, a column saying what it measures.

    ``map`` sends each measure code (a DHIS2 data element, a FHIR group code) to a
    (disease, measure) pair where measure is one of the dataset's ``MEASURES`` (``cases``
    or ``deaths``; for reporting ``reports_expected``, ``reports_received`` or
    ``reports_on_time``, with disease ``""`` for reports covering all diseases). ``strata_column``
    and ``strata`` do the same for disaggregations (category option combos, stratum
    components) mapping to an (age_band, sex) pair; an empty string means "total".
    """

    column: str
    value: str
    map: Mapping[str, tuple[str, str]]
    strata_column: str | None = None
    strata: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: A column that marks values deleted at the source (DHIS2 ``deleted``); such values
    #: are held back as ``deleted_in_source`` rather than counted.
    deleted_column: str | None = None


@dataclass(frozen=True)
class Unpivot:
    """Wide tables (one column per month): these columns become rows."""

    columns: tuple[str, ...]
    name: str
    value: str


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    version: str
    format: str
    dataset: str
    country: str
    source_path: str
    read: Mapping[str, object] = field(default_factory=dict)
    fields: Mapping[str, FieldMap] = field(default_factory=dict)
    period: PeriodSpec = field(default_factory=PeriodSpec)
    area: AreaSpec = field(default_factory=AreaSpec)
    measures: MeasureSpec | None = None
    unpivot: Unpivot | None = None
    rules: Mapping[str, object] = field(default_factory=dict)
    description: str = ""
