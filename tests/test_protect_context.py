"""Reporting and denominators releases: summed to the agreement's grain, never suppressed,
and every refusal of a missing or foreign input."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from epibridge.model.agreement import Refusal
from epibridge.model.schema import DENOMINATORS, RELEASE_DENOMINATORS, RELEASE_REPORTING, REPORTING
from tests.test_protect import NOW, TODAY, _agreement, _cases

START = date(2025, 1, 6)  # a Monday: ISO week 2025-W02


def _reporting(rows: list[tuple[str, str | None, int, int, int, int | None]]) -> pa.Table:
    """(area, disease, week index, expected, received, on time) -> harmonized reporting."""
    out: list[dict[str, Any]] = []
    for i, (area, disease, week, expected, received, on_time) in enumerate(rows):
        start = START + timedelta(weeks=week)
        iso = start.isocalendar()
        out.append(
            {
                "country": "KHM",
                "admin1": area,
                "admin2": None,
                "admin3": None,
                "area": area,
                "area_level": 1,
                "disease": disease,
                "period": f"{iso[0]}-W{iso[1]:02d}",
                "period_type": "week",
                "calendar": "iso",
                "period_start": start,
                "period_end": start + timedelta(days=6),
                "reports_expected": expected,
                "reports_received": received,
                "reports_on_time": on_time,
                "source_file": "reports.csv",
                "source_record": i + 1,
            }
        )
    return pa.Table.from_pylist(out, schema=REPORTING)


def _population(rows: list[tuple[str, int, int, str | None, str | None, int]]) -> pa.Table:
    """(area, level, year, age band, sex, population) -> harmonized denominators."""
    out = []
    for area, level, year, band, sex, n in rows:
        out.append(
            {
                "country": "KHM",
                "admin1": area if level == 1 else None,
                "admin2": None,
                "admin3": None,
                "area": area,
                "area_level": level,
                "year": year,
                "age_band": band,
                "sex": sex,
                "population": n,
                "source": f"census {year}",
            }
        )
    return pa.Table.from_pylist(out, schema=DENOMINATORS)


def _folder(tmp: Path, name: str, table: pa.Table, dataset: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    pq.write_table(table, folder / f"{dataset}.parquet")
    return folder


def _protect(tmp: Path, in_dirs: list[Path], **changes: Any) -> tuple[dict[str, Any], Path]:
    from epibridge.protect import protect

    kw: dict[str, Any] = {
        k: changes.pop(k) for k in ("period_from", "period_to", "asked") if k in changes
    }
    if "asked" in kw:
        kw["datasets"] = kw.pop("asked")
    agreement = _agreement(**changes)
    out = tmp / f"release{len(list(tmp.glob('release*')))}"
    result = protect(agreement, in_dirs, out, tmp / "home", TODAY, NOW, **kw)
    return result.receipt, out


def test_reporting_is_summed_to_months_and_never_suppressed(tmp_path: Path) -> None:
    reports = _reporting(
        [
            # KH-12, DENGUE: four weeks of January (W02..W05), one report short, one late
            ("KH-12", "DENGUE", 0, 3, 3, 3),
            ("KH-12", "DENGUE", 1, 3, 2, 2),
            ("KH-12", "DENGUE", 2, 3, 3, 2),
            ("KH-12", "DENGUE", 3, 3, 3, 3),
            # a zero-report form for all diseases, one week without the on-time count
            ("KH-1", None, 0, 1, 1, 1),
            ("KH-1", None, 1, 1, 1, None),
            # a disease the agreement does not cover
            ("KH-1", "MEASLES", 0, 1, 1, 1),
        ]
    )
    folder = _folder(tmp_path, "reports", reports, "reporting")
    receipt, out = _protect(
        tmp_path, [folder], datasets=("reporting",), time_resolution="month", area_level=1
    )
    table = pq.read_table(out / "reporting.parquet")
    assert table.schema.equals(RELEASE_REPORTING, check_metadata=False)
    rows = {(r["area"], r["disease"], r["period"]): r for r in table.to_pylist()}
    assert set(rows) == {("KH-12", "DENGUE", "2025-01"), ("KH-1", None, "2025-01")}
    dengue = rows[("KH-12", "DENGUE", "2025-01")]
    assert (dengue["reports_expected"], dengue["reports_received"]) == (12, 11)
    assert dengue["reports_on_time"] == 10
    # one week did not say: the month's on-time count is unknown, not undercounted
    assert rows[("KH-1", None, "2025-01")]["reports_on_time"] is None
    section = receipt["datasets"]["reporting"]
    assert section["records_read"] == 7 and section["rows"] == 2
    assert section["protection"].startswith("none")
    assert {"what": "report records", "why": "disease not covered", "count": 1} in receipt[
        "withheld"
    ]
    assert receipt["period"] == {"from": "2025-01-01", "to": "2025-01-31"}


def test_reporting_respects_the_period_window_and_embargo(tmp_path: Path) -> None:
    reports = _reporting([("KH-12", "DENGUE", w, 2, 2, 2) for w in range(6)])
    folder = _folder(tmp_path, "reports", reports, "reporting")
    receipt, out = _protect(
        tmp_path,
        [folder],
        datasets=("reporting",),
        time_resolution="week",
        period_to=START + timedelta(weeks=2, days=6),
    )
    assert pq.read_table(out / "reporting.parquet").num_rows == 3
    assert {"what": "report records", "why": "period outside --from/--to", "count": 3} in receipt[
        "withheld"
    ]


def test_denominators_prefer_direct_figures_and_fold_strata(tmp_path: Path) -> None:
    population = _population(
        [
            # KH-12 has a total and its sex strata; KH-1 has strata only
            ("KH-12", 1, 2024, None, None, 2_300_000),
            ("KH-12", 1, 2024, None, "M", 1_100_000),
            ("KH-12", 1, 2024, None, "F", 1_200_000),
            ("KH-1", 1, 2024, None, "M", 430_000),
            ("KH-1", 1, 2024, None, "F", 440_000),
        ]
    )
    folder = _folder(tmp_path, "population", population, "denominators")
    # no sex allowed: KH-12's total wins over its strata; KH-1's strata are summed
    _, out = _protect(tmp_path, [folder], datasets=("denominators",), count_fields=())
    table = pq.read_table(out / "denominators.parquet")
    assert table.schema.equals(RELEASE_DENOMINATORS, check_metadata=False)
    got = {(r["area"], r["sex"]): r["population"] for r in table.to_pylist()}
    assert got == {("KH-12", None): 2_300_000, ("KH-1", None): 870_000}


def test_denominators_keep_allowed_strata_and_prefer_the_country_figure(tmp_path: Path) -> None:
    population = _population(
        [
            ("KHM", 0, 2024, None, None, 17_400_000),
            ("KH-12", 1, 2024, None, None, 2_300_000),
            ("KH-1", 1, 2024, None, None, 870_000),
            ("KH-12", 1, 2024, None, "F", 1_200_000),
        ]
    )
    folder = _folder(tmp_path, "population", population, "denominators")
    _, out = _protect(
        tmp_path, [folder], datasets=("denominators",), count_fields=("sex",), area_level=0
    )
    got = {
        (r["area"], r["sex"]): r["population"]
        for r in pq.read_table(out / "denominators.parquet").to_pylist()
    }
    # the country's own figure, not the sum of two provinces; the F stratum summed up
    assert got == {("KHM", None): 17_400_000, ("KHM", "F"): 1_200_000}


def test_counts_reporting_and_denominators_in_one_release(tmp_path: Path) -> None:
    cases = _folder(tmp_path, "cases", _cases(), "cases")
    reports = _folder(
        tmp_path, "reports", _reporting([("KH-12", "DENGUE", 0, 2, 2, 2)]), "reporting"
    )
    people = _folder(
        tmp_path, "people", _population([("KH-12", 1, 2025, None, None, 2_300_000)]), "denominators"
    )
    receipt, _ = _protect(
        tmp_path,
        [cases, reports, people],
        datasets=("counts", "reporting", "denominators"),
    )
    assert set(receipt["datasets"]) == {"counts", "reporting", "denominators"}
    assert set(receipt["files"]) == {"counts.parquet", "reporting.parquet", "denominators.parquet"}
    # validity is scored from the ingest run of the cases, not of the reports
    assert receipt["source_quality"] is None


def test_missing_or_repeated_inputs_are_refused(tmp_path: Path) -> None:
    cases = _folder(tmp_path, "cases", _cases(), "cases")
    reporting = ("counts", "reporting")
    # by default a release carries what the folders hold
    receipt, _ = _protect(tmp_path, [cases], datasets=reporting)
    assert set(receipt["datasets"]) == {"counts"}
    with pytest.raises(Refusal, match=r"no input folder has reporting\.parquet"):
        _protect(tmp_path, [cases], datasets=reporting, asked=reporting)
    reports = _folder(
        tmp_path, "reports", _reporting([("KH-12", "DENGUE", 0, 2, 2, 2)]), "reporting"
    )
    with pytest.raises(Refusal, match=r"no input folder has cases\.parquet or counts\.parquet"):
        _protect(tmp_path, [reports], datasets=reporting, asked=("counts",))
    again = _folder(tmp_path, "again", _cases(), "cases")
    with pytest.raises(Refusal, match=r"two input folders hold cases\.parquet"):
        _protect(tmp_path, [cases, again], datasets=("counts",))
    assert [p.name for p in tmp_path.glob("release*")] == ["release0"]


def test_reporting_of_another_country_is_refused(tmp_path: Path) -> None:
    reports = _reporting([("KH-12", "DENGUE", 0, 2, 2, 2)])
    foreign = reports.set_column(0, "country", pa.array(["LAO"], pa.string()))
    folder = _folder(tmp_path, "reports", foreign, "reporting")
    with pytest.raises(Refusal, match="data of LAO"):
        _protect(tmp_path, [folder], datasets=("reporting",))
