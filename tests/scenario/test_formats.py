"""Each country's scenario file ingests whole with its profile; each agreement releases it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook

from epibridge.agreements import load_agreement
from epibridge.ingest import ingest
from epibridge.profiles import load_profile
from epibridge.protect import protect
from epibridge.scenario.formats import FORMATS, write_all
from epibridge.scenario.mekong import COUNTRIES, Scenario, generate

TODAY = date(2026, 12, 5)
AGREEMENTS = Path(str(resources.files("epibridge.examples") / "agreements"))


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    # Two years reach back across Viet Nam's 2025 merger.
    return generate(TODAY, seed=2026, years=2)


def _short(scenario: Scenario, country: str) -> pa.Table:
    """Viet Nam's two years (both sets of units); half a year elsewhere, to stay fast."""
    table = scenario.country(country)
    if country == "VNM":
        return table
    return table.filter(pc.greater_equal(table["week_start"], scenario.weeks[-26]))


def _totals(rows: list[dict[str, object]], week: str, field: str) -> Counter[tuple[str, date]]:
    out: Counter[tuple[str, date]] = Counter()
    for r in rows:
        value = r[field]
        assert isinstance(value, int | float) and value == int(value), (field, value)
        key = r[week]
        assert isinstance(key, date)
        out[(str(r["area"]), key)] += int(value)
    return out


@pytest.mark.parametrize("country", COUNTRIES)
def test_file_ingests_whole_and_agreement_releases_it(
    country: str, scenario: Scenario, tmp_path: Path
) -> None:
    fmt = FORMATS[country]
    table = _short(scenario, country)
    path = fmt.writer(table, tmp_path / fmt.file_name)
    profile = load_profile(fmt.profile)
    assert profile.country == country

    result = ingest(profile, [path], tmp_path / "ingested", TODAY)
    assert result.read > 0
    assert result.quarantined == 0, result.by_rule()
    assert result.accepted == result.read

    truth = table.to_pylist()
    got = pq.read_table(tmp_path / "ingested" / "counts.parquet").to_pylist()
    assert all(r["period_type"] == "week" and r["calendar"] == "iso" for r in got)
    assert _totals(got, "period_start", "cases") == _totals(truth, "week_start", "cases")
    assert _totals(got, "period_start", "deaths") == _totals(truth, "week_start", "deaths")

    agreement = load_agreement(AGREEMENTS / fmt.agreement)
    assert agreement.sender == country
    assert agreement.valid_from <= TODAY <= agreement.valid_to
    release = protect(
        agreement,
        tmp_path / "ingested",
        tmp_path / "release",
        tmp_path / "node",
        TODAY,
        datetime(2026, 12, 5, 12, tzinfo=UTC),
    )
    counts = release.receipt["datasets"]["counts"]
    assert counts["breakdowns"] == []
    assert counts["suppression"]["k"] == 5
    assert (tmp_path / "release" / "receipt.json").is_file()


def test_write_all_writes_one_file_per_country(scenario: Scenario, tmp_path: Path) -> None:
    small = Scenario(
        scenario.today,
        scenario.seed,
        scenario.weeks[-2:],
        scenario.counts.filter(pc.greater_equal(scenario.counts["week_start"], scenario.weeks[-2])),
        scenario.outbreaks,
        scenario.reporting.filter(
            pc.greater_equal(scenario.reporting["week_start"], scenario.weeks[-2])
        ),
        scenario.population,
    )
    files = write_all(small, tmp_path / "scenario")
    assert sorted(files) == sorted(COUNTRIES)
    assert {p.name for p in files.values()} == {f.file_name for f in FORMATS.values()}
    # The national spellings the profiles rely on.
    vnm = files["VNM"].read_text(encoding="utf-8").splitlines()
    assert vnm[0] == "Năm,Tuần,Tỉnh/Thành phố,Số ca mắc,Số ca tử vong"
    assert any("Tây Ninh" in line for line in vnm)
    rows = CalamineWorkbook.from_path(str(files["THA"])).get_sheet_by_name("ไข้เลือดออก")
    sheet = rows.to_python()
    assert sheet[1][0] == "ปี พ.ศ." and sheet[2][0] == 2026 + 543
    dhis2 = json.loads(files["LAO"].read_text(encoding="utf-8"))
    assert {v["period"] for v in dhis2["dataValues"]} == {"2026W47", "2026W48"}
    bundle = json.loads(files["KHM"].read_text(encoding="utf-8"))
    first = bundle["entry"][0]["resource"]
    assert first["period"] == {
        "start": small.weeks[0].isoformat(),
        "end": (small.weeks[0] + timedelta(days=6)).isoformat(),
    }
