"""Viet Nam's 2025 merger: old units before, new units after, followed only when asked."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from epibridge.ingest import ingest
from epibridge.profiles import load_profile
from tests.conftest import TODAY

PROFILE = """
[profile]
name = "vnm-test"
format = "delimited"
dataset = "cases"
country = "VNM"
[fields]
case_id = "id"
disease = { value = "DENGUE" }
date_report = "reported"
[period]
from_date = "date_report"
[area]
columns = ["province"]
crosswalk = CROSSWALK
"""
ROWS = """id,reported,province
1,2025-05-10,Binh Duong
2,2025-08-10,Binh Duong
3,2024-03-01,Ho Chi Minh City
4,2025-09-01,Ho Chi Minh City
5,2025-09-01,Thành phố Hồ Chí Minh
"""


def _run(
    write: Callable[[str, str], Path], tmp: Path, crosswalk: bool
) -> tuple[dict[str, str], dict[str, str]]:
    text = PROFILE.replace("CROSSWALK", "true" if crosswalk else "false")
    out = tmp / f"out-{crosswalk}"
    ingest(load_profile(write("p.toml", text)), [write("in.csv", ROWS)], out, TODAY)
    placed = {r["case_id"]: r["area"] for r in pq.read_table(out / "cases.parquet").to_pylist()}
    with (out / "quarantine.csv").open(encoding="utf-8") as handle:
        held = {
            r["record"]: r["rule"] + "|" + (r["suggestion"] or "") for r in csv.DictReader(handle)
        }
    return placed, held


def test_old_and_new_units_by_date(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    placed, held = _run(write, tmp_path, crosswalk=True)
    assert held == {}
    assert placed["1"] == "VN-57"  # Binh Duong, before the merger
    assert placed["2"] == "VN-N79"  # merged into Ho Chi Minh City
    assert placed["3"] == "VN-SG"  # the old city, by name, before the merger
    assert placed["4"] == placed["5"] == "VN-N79"


def test_abolished_unit_is_quarantined_without_crosswalk(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    placed, held = _run(write, tmp_path, crosswalk=False)
    assert held == {"2": "unit_not_valid|VN-N79"}
    assert placed["1"] == "VN-57"
    assert placed["3"] == "VN-SG"
