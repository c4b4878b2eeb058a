"""Arrow schemas of the common data model.

Every table that leaves an adapter and passes validation and harmonization has one of
these schemas, whatever the national format it came from. Each field carries its meaning
in the field metadata (``description``), which ``docs/data-model.md`` renders and a test
keeps in step. Codes are the registries' codes: countries are ISO 3166-1 alpha-3, areas are
codes of ``registry/geography`` units, diseases are ``registry/diseases`` codes, periods are
labels of ``registry/calendars`` (the ``calendar`` column says which week convention).

Lineage: every harmonized row keeps ``source_file`` and ``source_record`` so that any value
can be traced back to the record it came from.
"""

from __future__ import annotations

import pyarrow as pa

SEXES = ("M", "F", "U")
CLASSIFICATIONS = ("suspected", "probable", "confirmed")
OUTCOMES = ("alive", "dead", "unknown")
PERIOD_TYPES = (
    "day",
    "week",
    "biweek",
    "month",
    "bimonth",
    "quarter",
    "sixmonth",
    "year",
    "financial_year",
)


def _f(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


_AREA = [
    _f("country", pa.string(), "ISO 3166-1 alpha-3 code of the reporting country.", False),
    _f(
        "admin1",
        pa.string(),
        "Code of the first-level administrative unit (province, state, "
        "region, departamento), from the geography registry; null when unknown.",
    ),
    _f(
        "admin2",
        pa.string(),
        "Code of the second-level unit (district, provincia, "
        "mesoregion); null when unknown or not reported.",
    ),
    _f(
        "admin3",
        pa.string(),
        "Code of the third-level unit (commune, distrito, microregion); "
        "null when unknown or not reported.",
    ),
    _f(
        "area",
        pa.string(),
        "Code of the finest unit the record was placed in (equals the "
        "deepest non-null adminN, or the country code when only the country is known).",
        False,
    ),
    _f("area_level", pa.int8(), "Admin level of `area`: 0 country, 1, 2 or 3.", False),
]

_PERIOD = [
    _f(
        "period",
        pa.string(),
        "Label of the reporting period in the registry's canonical form "
        "(week `2025-W23`, month `2025-01`, quarter `2025-Q1`, year `2025`, day `2025-01-31`).",
        False,
    ),
    _f("period_type", pa.string(), f"One of {', '.join(PERIOD_TYPES)}.", False),
    _f(
        "calendar",
        pa.string(),
        "Week convention the period label follows: `iso` (Monday "
        "start), `cdc` (Sunday start, MMWR), a start weekday such as `wed`, or `gregorian` for "
        "non-week periods.",
        False,
    ),
    _f("period_start", pa.date32(), "First day of the period.", False),
    _f("period_end", pa.date32(), "Last day of the period (inclusive).", False),
]

_LINEAGE = [
    _f("source_file", pa.string(), "Name of the input file the row came from.", False),
    _f("source_record", pa.int64(), "1-based record number in that file (see adapters).", False),
]

CASES = pa.schema(
    [
        _f(
            "case_id",
            pa.string(),
            "Case identifier as exported by the national system, or a "
            "stable identifier made from file and record number when the source has none. "
            "The protect stage replaces it with a keyed pseudonym before anything leaves the "
            "node.",
            False,
        ),
        *_AREA,
        _f(
            "disease", pa.string(), "Regional disease code (registry/diseases), e.g. DENGUE.", False
        ),
        _f(
            "disease_detail",
            pa.string(),
            "The national label or code of the diagnosis as "
            "reported (e.g. `DENGUE CON SENALES DE ALARMA`, `A91`).",
        ),
        _f("date_onset", pa.date32(), "Date of symptom onset."),
        _f("date_diagnosis", pa.date32(), "Date of diagnosis or laboratory confirmation."),
        _f("date_report", pa.date32(), "Date the case was notified to public health."),
        *_PERIOD,
        _f("sex", pa.string(), "M, F or U (unknown/other/not stated)."),
        _f(
            "age_years",
            pa.float32(),
            "Age in years at onset (fractions for infants); null when only a band is known.",
        ),
        _f(
            "age_band",
            pa.string(),
            "Age band as `lo-hi` in whole years (`40-44`) or `lo+` "
            "(`70+`), as the source gives it (mapped through the profile's codes).",
        ),
        _f("classification", pa.string(), "suspected, probable or confirmed."),
        _f("outcome", pa.string(), "alive, dead or unknown."),
        _f(
            "imported", pa.bool_(), "True when the case was infected outside the reporting country."
        ),
        _f(
            "country_of_infection",
            pa.string(),
            "ISO 3166-1 alpha-3 code of the country where the infection was acquired, when known.",
        ),
        _f(
            "pathogen_detail",
            pa.string(),
            "Serotype, genotype or other pathogen detail (e.g. DENV2).",
        ),
        _f(
            "case_count",
            pa.int32(),
            "Number of cases the record stands for: 1 in a true line "
            "list; some national exports group identical cases on one row.",
            False,
        ),
        *_LINEAGE,
    ],
    metadata={"name": "cases", "version": "1"},
)

COUNTS = pa.schema(
    [
        *_AREA,
        _f("disease", pa.string(), "Regional disease code (registry/diseases).", False),
        *_PERIOD,
        _f("age_band", pa.string(), "Age stratum `lo-hi` or `65+`; null = all ages."),
        _f("sex", pa.string(), "Sex stratum M, F or U; null = both sexes."),
        _f("cases", pa.int64(), "Number of cases in the cell.", False),
        _f("deaths", pa.int64(), "Number of deaths in the cell; null when not reported."),
        *_LINEAGE,
    ],
    metadata={"name": "counts", "version": "1"},
)

DENOMINATORS = pa.schema(
    [
        *_AREA,
        _f("year", pa.int16(), "Calendar year the population refers to (mid-year).", False),
        _f("age_band", pa.string(), "Age stratum; null = all ages."),
        _f("sex", pa.string(), "Sex stratum; null = both sexes."),
        _f("population", pa.int64(), "Number of people.", False),
        _f("source", pa.string(), "Where the figure comes from (census, estimate, agency).", False),
    ],
    metadata={"name": "denominators", "version": "1"},
)

REPORTING = pa.schema(
    [
        *_AREA,
        _f(
            "disease",
            pa.string(),
            "Regional disease code, or null when the report covers "
            "all notifiable diseases (a weekly zero-report form).",
        ),
        *_PERIOD,
        _f(
            "reports_expected",
            pa.int32(),
            "Reports expected from reporting units in the area "
            "for the period (DHIS2 'expected reports').",
            False,
        ),
        _f(
            "reports_received",
            pa.int32(),
            "Reports actually received (DHIS2 'actual reports').",
            False,
        ),
        _f(
            "reports_on_time",
            pa.int32(),
            "Reports received by the deadline (DHIS2 'actual reports on time').",
        ),
        *_LINEAGE,
    ],
    metadata={"name": "reporting", "version": "1"},
)

QUARANTINE = pa.schema(
    [
        _f("file", pa.string(), "Input file.", False),
        _f("record", pa.int64(), "1-based record number in the file.", False),
        _f("field", pa.string(), "Source column (or field) that failed.", False),
        _f("value", pa.string(), "The offending value as read (may be empty)."),
        _f(
            "rule",
            pa.string(),
            "Identifier of the rule that failed (see docs/validation.md).",
            False,
        ),
        _f("message", pa.string(), "What is wrong and what to do, in plain words.", False),
        _f("suggestion", pa.string(), "Nearest known code(s) for unknown codes."),
        _f("other_rules", pa.string(), "Other rules the same record failed, `;`-separated."),
    ],
    metadata={"name": "quarantine", "version": "1"},
)

RELEASE_COUNTS = pa.schema(
    [
        _f("country", pa.string(), "ISO 3166-1 alpha-3 code of the sending country.", False),
        _f(
            "area",
            pa.string(),
            "Code of the area, generalized to the agreement's finest level (or the "
            "record's own coarser level).",
            False,
        ),
        _f("area_level", pa.int8(), "Admin level of `area`: 0 country, 1, 2 or 3.", False),
        _f("disease", pa.string(), "Regional disease code (registry/diseases).", False),
        *_PERIOD,
        _f("sex", pa.string(), "Sex stratum M, F or U; null = both sexes (a total)."),
        _f(
            "age_band",
            pa.string(),
            "Age band of the agreement (`0-4`, `65+`) or `unknown`; null = all ages (a total).",
        ),
        _f(
            "cases",
            pa.int64(),
            "Cases in the cell; null when suppressed. Noisy (and possibly negative) under "
            "differential privacy. Cells of a released block that are not listed are zero.",
        ),
        _f("cases_suppressed", pa.bool_(), "True when `cases` was withheld.", False),
        _f(
            "deaths",
            pa.int64(),
            "Deaths in the cell, when the agreement allows them; null when suppressed.",
        ),
        _f("deaths_suppressed", pa.bool_(), "True when `deaths` was withheld."),
    ],
    metadata={"name": "release_counts", "version": "1"},
)

_RELEASE_AREA = [
    _f("country", pa.string(), "ISO 3166-1 alpha-3 code of the sending country.", False),
    _f(
        "area",
        pa.string(),
        "Code of the area, generalized to the agreement's finest level (or the "
        "record's own coarser level).",
        False,
    ),
    _f("area_level", pa.int8(), "Admin level of `area`: 0 country, 1, 2 or 3.", False),
]

RELEASE_REPORTING = pa.schema(
    [
        *_RELEASE_AREA,
        _f(
            "disease",
            pa.string(),
            "Regional disease code, or null when the reports cover all notifiable diseases.",
        ),
        *_PERIOD,
        _f(
            "reports_expected",
            pa.int64(),
            "Reports expected from the reporting units of the area in the period (summed "
            "over the units and periods the release generalizes).",
            False,
        ),
        _f("reports_received", pa.int64(), "Reports received.", False),
        _f(
            "reports_on_time",
            pa.int64(),
            "Reports received by the deadline; null when the source did not say for every "
            "report the cell sums.",
        ),
    ],
    metadata={"name": "release_reporting", "version": "1"},
)

RELEASE_DENOMINATORS = pa.schema(
    [
        *_RELEASE_AREA,
        _f("year", pa.int16(), "Calendar year the population refers to (mid-year).", False),
        _f(
            "age_band",
            pa.string(),
            "Age stratum, when the agreement allows age bands; null = all ages.",
        ),
        _f(
            "sex", pa.string(), "Sex stratum M, F or U, when the agreement allows sex; null = both."
        ),
        _f("population", pa.int64(), "Number of people.", False),
        _f(
            "source",
            pa.string(),
            "Where the figure comes from; the sources joined with `; ` when a generalized "
            "area sums figures of several.",
            False,
        ),
    ],
    metadata={"name": "release_denominators", "version": "1"},
)

SCHEMAS: dict[str, pa.Schema] = {
    "cases": CASES,
    "counts": COUNTS,
    "denominators": DENOMINATORS,
    "reporting": REPORTING,
    "quarantine": QUARANTINE,
    "release_counts": RELEASE_COUNTS,
    "release_reporting": RELEASE_REPORTING,
    "release_denominators": RELEASE_DENOMINATORS,
}
