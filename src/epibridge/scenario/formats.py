"""Write the Mekong scenario in each country's own national format, for ``epibridge ingest``.

Why: the hub's value is in reading what countries actually send, so the synthetic counts
(:mod:`epibridge.scenario.mekong`) are written the way each country's system would export
them, and ingested with the shipped profile ``mekong-<iso3>-...`` like any real file:

========  =====================================================  ==============================
country   file                                                   profile
========  =====================================================  ==============================
KHM       FHIR R4 Bundle of MeasureReports (IHE mADX), one per   mekong-khm-fhir-madx-weekly
          province and week, ISO 3166-2 subject identifiers
LAO       DHIS2 data value set (JSON, CODE id scheme), weekly    mekong-lao-dhis2-weekly
          periods ``2026W47``
VNM       CSV (UTF-8), Vietnamese headers, province names in     mekong-vnm-csv-weekly
          Vietnamese, ISO week-year and week
THA       Excel workbook, Thai headers under a title row, Thai   mekong-tha-excel-weekly
          province names, Buddhist-era years
MMR       CSV, English headers, state and region names           mekong-mmr-csv-weekly
========  =====================================================  ==============================

Names and codes come from the geography registry (``name_local`` for Vietnamese and Thai,
``name`` for Myanmar's English file, the registry code for DHIS2 and FHIR). Rows are
written in the scenario's order (country, week, area). Every file says it is synthetic.

Beside its counts each country sends its weekly reporting (reports expected, received,
on time: :data:`CONTEXT`, :func:`write_context`): Lao PDR as a DHIS2 analytics data value
set (``IDSR_WEEKLY.EXPECTED_REPORTS`` ..., as ``dhis2-example-reporting`` reads), the others
as one shared CSV layout (:data:`REPORTING_HEADER`, units by ISO 3166-2 code, ``Disease``
empty for a form covering every notifiable disease), read by
``mekong-<iso3>-<format>-reporting``. Cambodia and Viet Nam also send population per
province and year (:data:`POPULATION_HEADER`, the layout of ``mekong-khm-csv-population``).
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from openpyxl import Workbook

from epibridge.model.errors import EpibridgeError
from epibridge.registry import calendars, geography
from epibridge.scenario.mekong import COUNTRIES, Scenario

__all__ = [
    "CONTEXT",
    "FORMATS",
    "POPULATION_HEADER",
    "REPORTING_HEADER",
    "ContextFile",
    "CountryFormat",
    "write_all",
    "write_context",
    "write_khm_fhir",
    "write_lao_dhis2",
    "write_lao_dhis2_reporting",
    "write_mmr_csv",
    "write_population_csv",
    "write_reporting_csv",
    "write_tha_excel",
    "write_vnm_csv",
]

#: Said in every file, where the format has room for it.
SYNTHETIC: Final = "SYNTHETIC data (epibridge Mekong scenario), not real surveillance counts"

#: FHIR identifier system of ISO 3166-2 subdivision codes (as in the mADX example).
ISO_3166_2: Final = "urn:iso:std:iso:3166:-2"
MEASURE_URL: Final = "http://epibridge.example/Measure/dengue-weekly"
INDICATOR_SYSTEM: Final = "http://epibridge.example/indicator"

VNM_HEADER: Final = ("Năm", "Tuần", "Tỉnh/Thành phố", "Số ca mắc", "Số ca tử vong")
THA_HEADER: Final = ("ปี พ.ศ.", "สัปดาห์ที่", "จังหวัด", "จำนวนผู้ป่วย", "จำนวนผู้เสียชีวิต")
THA_TITLE: Final = "รายงานผู้ป่วยไข้เลือดออกรายสัปดาห์ รายจังหวัด (ข้อมูลสังเคราะห์ / synthetic)"
THA_SHEET: Final = "ไข้เลือดออก"
MMR_HEADER: Final = ("Year", "Epi week", "State/Region", "Cases", "Deaths")
#: The reporting CSV of every country but Lao PDR: ISO week-year and week, the unit's
#: ISO 3166-2 code (read) and English name (for people), the disease code or empty.
REPORTING_HEADER: Final = (
    "Year",
    "Week",
    "Area code",
    "Area",
    "Disease",
    "Reports expected",
    "Reports received",
    "Reports on time",
)
#: The population CSV (the layout ``mekong-khm-csv-population`` reads).
POPULATION_HEADER: Final = ("province", "year", "population", "source")
#: The registry name each population file uses (English for Cambodia, as the NIS tables).
POPULATION_NAMES: Final = {"KHM": "name", "VNM": "name_local"}
#: DHIS2's reporting-rate metrics of the IDSR weekly data set, per scenario column.
DHIS2_REPORTING: Final = {
    "reports_expected": "IDSR_WEEKLY.EXPECTED_REPORTS",
    "reports_received": "IDSR_WEEKLY.ACTUAL_REPORTS",
    "reports_on_time": "IDSR_WEEKLY.ACTUAL_REPORTS_ON_TIME",
}


@dataclass(frozen=True)
class _Row:
    area: str
    week_start: date
    cases: int
    deaths: int

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def iso_week(self) -> tuple[int, int]:
        return calendars.week_of(self.week_start, "iso")


def _rows(table: pa.Table, country: str) -> Iterator[_Row]:
    for r in table.filter(pc.equal(table["country"], country)).to_pylist():
        yield _Row(r["area"], r["week_start"], int(r["cases"]), int(r["deaths"]))


def _local_name(code: str) -> str:
    u = geography.unit(code)
    if not u.name_local:
        raise EpibridgeError(f"the geography registry has no local-script name for {code}")
    return u.name_local


# ------------------------------------------------------------------ KHM: FHIR mADX


def _group(code: str, count: int) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": INDICATOR_SYSTEM, "code": code}]},
        "population": [{"code": {"coding": [{"code": "initial-population"}]}, "count": count}],
    }


def write_khm_fhir(table: pa.Table, path: Path) -> Path:
    """Cambodia: a FHIR R4 ``Bundle`` of weekly ``MeasureReport`` s (IHE mADX style).

    One report per province and ISO week; ``subject`` is the province's ISO 3166-2 code as
    an identifier; two groups, ``DENGUE_CASES`` and ``DENGUE_DEATHS``, each with its total.
    """
    entries = []
    for i, row in enumerate(_rows(table, "KHM")):
        year, week = row.iso_week
        report = {
            "resourceType": "MeasureReport",
            "id": f"khm-dengue-{row.area}-{year}W{week:02d}",
            "status": "complete",
            "type": "summary",
            "measure": MEASURE_URL,
            "subject": {"identifier": {"system": ISO_3166_2, "value": row.area}},
            "date": (row.week_end + timedelta(days=1)).isoformat(),
            "period": {"start": row.week_start.isoformat(), "end": row.week_end.isoformat()},
            "group": [_group("DENGUE_CASES", row.cases), _group("DENGUE_DEATHS", row.deaths)],
        }
        entries.append({"fullUrl": f"urn:uuid:{_uuid(i)}", "resource": report})
    bundle = {
        "resourceType": "Bundle",
        "id": "khm-dengue-weekly-scenario",
        "meta": {"tag": [{"code": "synthetic", "display": SYNTHETIC}]},
        "type": "collection",
        "entry": entries,
    }
    path.write_text(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")), "utf-8")
    return path


def _uuid(i: int) -> str:
    """A fixed, valid version-4 UUID per entry number (the files stay reproducible)."""
    return f"00000000-0000-4000-8000-{i:012d}"


# -------------------------------------------------------------------- LAO: DHIS2


def write_lao_dhis2(table: pa.Table, path: Path) -> Path:
    """Lao PDR: a DHIS2 data value set (JSON, CODE id scheme) with weekly periods."""
    values = []
    for row in _rows(table, "LAO"):
        year, week = row.iso_week
        period = calendars.to_dhis2_period(calendars.week_period(year, week, "iso"))
        stamp = (row.week_end + timedelta(days=2)).isoformat()
        for element, value in (
            ("IDSR_DENGUE_CASES", row.cases),
            ("IDSR_DENGUE_DEATHS", row.deaths),
        ):
            values.append(
                {
                    "dataElement": element,
                    "period": period,
                    "orgUnit": row.area,
                    "categoryOptionCombo": "default",
                    "attributeOptionCombo": "default",
                    "value": str(value),
                    "storedBy": "scenario",
                    "lastUpdated": stamp,
                }
            )
    document = {"dataSet": "IDSR_WEEKLY", "comment": SYNTHETIC, "dataValues": values}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), "utf-8")
    return path


# ------------------------------------------------------------- VNM and MMR: CSV


def _write_csv(path: Path, header: tuple[str, ...], rows: Iterator[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_vnm_csv(table: pa.Table, path: Path) -> Path:
    """Viet Nam: CSV with Vietnamese headers and province names (the units of each week)."""
    rows = (
        [*row.iso_week, _local_name(row.area), row.cases, row.deaths] for row in _rows(table, "VNM")
    )
    return _write_csv(path, VNM_HEADER, rows)


def write_mmr_csv(table: pa.Table, path: Path) -> Path:
    """Myanmar: CSV with English headers and state and region names."""
    rows = (
        [*row.iso_week, geography.unit(row.area).name, row.cases, row.deaths]
        for row in _rows(table, "MMR")
    )
    return _write_csv(path, MMR_HEADER, rows)


# ------------------------------------------------------------------ THA: Excel


def write_tha_excel(table: pa.Table, path: Path) -> Path:
    """Thailand: an .xlsx workbook, Thai headers under a title row, Buddhist-era years."""
    book = Workbook(write_only=True)
    # Fixed properties: the workbook says the same whenever it is written.
    book.properties.creator = "epibridge scenario"
    book.properties.title = SYNTHETIC
    book.properties.created = datetime(2026, 1, 1)
    book.properties.modified = datetime(2026, 1, 1)
    sheet = book.create_sheet(THA_SHEET)
    sheet.append([THA_TITLE])
    sheet.append(list(THA_HEADER))
    for row in _rows(table, "THA"):
        year, week = row.iso_week
        sheet.append(
            [
                calendars.gregorian_to_buddhist(year),
                week,
                _local_name(row.area),
                row.cases,
                row.deaths,
            ]
        )
    book.save(path)
    return path


# ------------------------------------------------------- reporting and population


def _country(table: pa.Table, country: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.filter(pc.equal(table["country"], country)).to_pylist()
    return rows


def write_lao_dhis2_reporting(table: pa.Table, path: Path) -> Path:
    """Lao PDR's weekly reporting: a DHIS2 analytics data value set (CODE id scheme) of the
    IDSR weekly data set's reports expected, received and on time, per province and week.

    ``table`` is the scenario's ``reporting``; the form covers every notifiable disease.
    """
    values = []
    for r in _country(table, "LAO"):
        year, week = calendars.week_of(r["week_start"], "iso")
        period = calendars.to_dhis2_period(calendars.week_period(year, week, "iso"))
        for column, element in DHIS2_REPORTING.items():
            values.append(
                {
                    "dataElement": element,
                    "period": period,
                    "orgUnit": r["area"],
                    "value": str(r[column]),
                }
            )
    document = {"comment": SYNTHETIC, "dataValues": values}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), "utf-8")
    return path


def write_reporting_csv(table: pa.Table, path: Path, country: str) -> Path:
    """One country's weekly reporting as CSV (:data:`REPORTING_HEADER`), from the scenario's
    ``reporting``; an empty ``Disease`` is a form covering every notifiable disease."""
    rows = (
        [
            *calendars.week_of(r["week_start"], "iso"),
            r["area"],
            geography.unit(r["area"]).name,
            r["disease"] or "",
            r["reports_expected"],
            r["reports_received"],
            r["reports_on_time"],
        ]
        for r in _country(table, country)
    )
    return _write_csv(path, REPORTING_HEADER, rows)


def write_population_csv(table: pa.Table, path: Path, country: str) -> Path:
    """One country's population per unit and year (:data:`POPULATION_HEADER`), from the
    scenario's ``population``: the units valid at mid-year, names as POPULATION_NAMES."""
    attribute = POPULATION_NAMES[country]
    rows = (
        [getattr(geography.unit(r["area"]), attribute), r["year"], r["population"], r["source"]]
        for r in _country(table, country)
    )
    return _write_csv(path, POPULATION_HEADER, rows)


# -------------------------------------------------------------------- all of them

Writer = Callable[[pa.Table, Path], Path]


@dataclass(frozen=True)
class CountryFormat:
    """How one country's scenario file is written and which shipped profile reads it."""

    country: str
    file_name: str
    profile: str
    agreement: str
    writer: Writer


FORMATS: Final[dict[str, CountryFormat]] = {
    f.country: f
    for f in (
        CountryFormat(
            "KHM",
            "khm-dengue-weekly-madx.json",
            "mekong-khm-fhir-madx-weekly",
            "khm-hub-weekly.toml",
            write_khm_fhir,
        ),
        CountryFormat(
            "LAO",
            "lao-dengue-weekly-dhis2.json",
            "mekong-lao-dhis2-weekly",
            "lao-hub-weekly.toml",
            write_lao_dhis2,
        ),
        CountryFormat(
            "THA",
            "tha-dengue-weekly.xlsx",
            "mekong-tha-excel-weekly",
            "tha-hub-weekly.toml",
            write_tha_excel,
        ),
        CountryFormat(
            "VNM",
            "vnm-dengue-weekly.csv",
            "mekong-vnm-csv-weekly",
            "vnm-hub-weekly.toml",
            write_vnm_csv,
        ),
        CountryFormat(
            "MMR",
            "mmr-dengue-weekly.csv",
            "mekong-mmr-csv-weekly",
            "mmr-hub-weekly.toml",
            write_mmr_csv,
        ),
    )
}


@dataclass(frozen=True)
class ContextFile:
    """A file a country sends beside its counts, and the shipped profile that reads it.

    ``dataset`` is the profile's (``reporting`` or ``denominators``); ``writer`` writes the
    scenario's table of it (``reporting`` or ``population``).
    """

    country: str
    dataset: str
    file_name: str
    profile: str
    writer: Writer

    def table(self, scenario: Scenario) -> pa.Table:
        """The scenario's table this file is written from."""
        return scenario.reporting if self.dataset == "reporting" else scenario.population


def _reporting_csv(country: str) -> ContextFile:
    iso3 = country.lower()
    return ContextFile(
        country,
        "reporting",
        f"{iso3}-reporting-weekly.csv",
        f"mekong-{iso3}-csv-reporting",
        functools.partial(write_reporting_csv, country=country),
    )


def _population_csv(country: str) -> ContextFile:
    iso3 = country.lower()
    return ContextFile(
        country,
        "denominators",
        f"{iso3}-population.csv",
        f"mekong-{iso3}-csv-population",
        functools.partial(write_population_csv, country=country),
    )


#: Per country, the files it sends beside its counts (reporting; population for KHM, VNM).
CONTEXT: Final[dict[str, tuple[ContextFile, ...]]] = {
    "KHM": (_reporting_csv("KHM"), _population_csv("KHM")),
    "LAO": (
        ContextFile(
            "LAO",
            "reporting",
            "lao-reporting-weekly-dhis2.json",
            "mekong-lao-dhis2-reporting",
            write_lao_dhis2_reporting,
        ),
    ),
    "THA": (_reporting_csv("THA"),),
    "VNM": (_reporting_csv("VNM"), _population_csv("VNM")),
    "MMR": (_reporting_csv("MMR"),),
}


def write_all(scenario: Scenario, folder: Path) -> dict[str, Path]:
    """Write every country's counts file into ``folder`` (created if needed): country -> file."""
    folder.mkdir(parents=True, exist_ok=True)
    return {c: FORMATS[c].writer(scenario.counts, folder / FORMATS[c].file_name) for c in COUNTRIES}


def write_context(scenario: Scenario, folder: Path) -> dict[tuple[str, str], Path]:
    """Write every country's reporting and population files into ``folder`` (created if
    needed): (country, dataset) -> file."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        (f.country, f.dataset): f.writer(f.table(scenario), folder / f.file_name)
        for c in COUNTRIES
        for f in CONTEXT[c]
    }
