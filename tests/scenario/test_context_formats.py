"""The scenario's reporting and population files ingest whole with their profiles, and each
country's agreement releases them beside its counts (one --in folder per dataset)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from epibridge.agreements import load_agreement
from epibridge.ingest import ingest
from epibridge.profiles import load_profile
from epibridge.protect import protect
from epibridge.scenario.formats import (
    CONTEXT,
    FORMATS,
    REPORTING_HEADER,
    ContextFile,
    write_context,
)
from epibridge.scenario.mekong import COUNTRIES, Scenario, generate, reporting_units

TODAY = date(2026, 12, 5)
AGREEMENTS = Path(str(resources.files("epibridge.examples") / "agreements"))
FILES = [f for c in COUNTRIES for f in CONTEXT[c]]
MEASURES = ("reports_expected", "reports_received", "reports_on_time")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    # Two years reach back across Viet Nam's 2025 merger.
    return generate(TODAY, seed=2026, years=2)


def _short(scenario: Scenario, file: ContextFile) -> pa.Table:
    """Viet Nam's two years (both sets of units); half a year of reporting elsewhere."""
    table = scenario.country(
        file.country, "reporting" if file.dataset == "reporting" else "population"
    )
    if file.country == "VNM" or file.dataset != "reporting":
        return table
    return table.filter(pc.greater_equal(table["week_start"], scenario.weeks[-26]))


def _sums(
    rows: list[dict[str, object]], keys: tuple[str, ...], measures: tuple[str, ...]
) -> Counter[tuple[object, ...]]:
    out: Counter[tuple[object, ...]] = Counter()
    for r in rows:
        for m in measures:
            value = r[m]
            assert isinstance(value, int), (m, value)
            out[(*(r[k] for k in keys), m)] += value
    return out


def test_every_country_sends_reporting_and_khm_vnm_population() -> None:
    assert {f.country for f in FILES if f.dataset == "reporting"} == set(COUNTRIES)
    assert {f.country for f in FILES if f.dataset == "denominators"} >= {"KHM", "VNM"}
    for f in FILES:
        profile = load_profile(f.profile)
        assert (profile.country, profile.dataset) == (f.country, f.dataset)
        assert f.profile.startswith(f"mekong-{f.country.lower()}-")


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.profile)
def test_file_ingests_whole_with_the_generated_totals(
    file: ContextFile, scenario: Scenario, tmp_path: Path
) -> None:
    table = _short(scenario, file)
    path = file.writer(table, tmp_path / file.file_name)
    result = ingest(load_profile(file.profile), [path], tmp_path / "ingested", TODAY)
    assert result.read > 0
    assert result.quarantined == 0, result.by_rule()
    assert result.accepted == result.read
    truth = table.to_pylist()
    got = pq.read_table(tmp_path / "ingested" / f"{file.dataset}.parquet").to_pylist()
    if file.dataset == "reporting":
        assert len(got) == len(truth)
        assert all(r["period_type"] == "week" and r["calendar"] == "iso" for r in got)
        assert {r["disease"] for r in got} == {r["disease"] for r in truth}
        keys = ("area", "disease")
        assert _sums(got, (*keys, "period_start"), MEASURES) == _sums(
            truth, (*keys, "week_start"), MEASURES
        )
        assert result.totals["reports_received"] == sum(r["reports_received"] for r in truth)
    else:
        assert _sums(got, ("area", "year"), ("population",)) == _sums(
            truth, ("area", "year"), ("population",)
        )
        assert {r["source"] for r in got} == {r["source"] for r in truth}
        assert result.totals["population_total"] == sum(r["population"] for r in truth)


@pytest.mark.parametrize("country", COUNTRIES)
def test_agreement_releases_them_beside_the_counts(
    country: str, scenario: Scenario, tmp_path: Path
) -> None:
    last = scenario.weeks[-8]
    counts = scenario.country(country)
    fmt = FORMATS[country]
    folders = [tmp_path / fmt.profile]
    path = fmt.writer(
        counts.filter(pc.greater_equal(counts["week_start"], last)), tmp_path / fmt.file_name
    )
    ingest(load_profile(fmt.profile), [path], folders[0], TODAY)
    for f in CONTEXT[country]:
        table = f.table(scenario)
        if f.dataset == "reporting":
            table = table.filter(pc.greater_equal(table["week_start"], last))
        path = f.writer(table, tmp_path / f.file_name)
        folders.append(tmp_path / f.profile)
        ingest(load_profile(f.profile), [path], folders[-1], TODAY)
    agreement = load_agreement(AGREEMENTS / fmt.agreement)
    release = protect(
        agreement,
        folders,
        tmp_path / "release",
        tmp_path / "node",
        TODAY,
        datetime(2026, 12, 5, 12, tzinfo=UTC),
    )
    sent = {f.dataset for f in CONTEXT[country]}
    assert set(release.receipt["datasets"]) == {"counts"} | sent
    receipt = json.loads((tmp_path / "release" / "receipt.json").read_text(encoding="utf-8"))
    assert {"counts.parquet", *(f"{d}.parquet" for d in sent)} == set(receipt["files"])
    reporting = pq.read_table(tmp_path / "release" / "reporting.parquet")
    sent_weeks = scenario.reporting.filter(
        pc.and_(
            pc.equal(scenario.reporting["country"], country),
            pc.greater_equal(scenario.reporting["week_start"], last),
        )
    )
    # Province and week are the agreement's grain: one released row per row sent, unsuppressed.
    assert (
        reporting.num_rows
        == sent_weeks.num_rows
        == 8 * len(reporting_units(country, scenario.weeks[-1]))
    )
    for m in MEASURES:
        assert pc.sum(reporting[m]).as_py() == pc.sum(sent_weeks[m]).as_py()


def test_write_context_writes_each_file(scenario: Scenario, tmp_path: Path) -> None:
    files = write_context(scenario, tmp_path / "scenario")
    assert set(files) == {(f.country, f.dataset) for f in FILES}
    assert {p.name for p in files.values()} == {f.file_name for f in FILES}
    khm = files[("KHM", "reporting")].read_text(encoding="utf-8").splitlines()
    assert khm[0] == ",".join(REPORTING_HEADER)
    assert khm[1].split(",")[4] == ""  # a form covering every notifiable disease
    assert (
        files[("THA", "reporting")].read_text(encoding="utf-8").splitlines()[1].split(",")[4]
        == "DENGUE"
    )
    lao = json.loads(files[("LAO", "reporting")].read_text(encoding="utf-8"))
    assert {v["dataElement"] for v in lao["dataValues"]} == {
        "IDSR_WEEKLY.EXPECTED_REPORTS",
        "IDSR_WEEKLY.ACTUAL_REPORTS",
        "IDSR_WEEKLY.ACTUAL_REPORTS_ON_TIME",
    }
    assert {v["orgUnit"] for v in lao["dataValues"]} <= {
        a for a in scenario.country("LAO")["area"].to_pylist()
    }
    khm_pop = files[("KHM", "denominators")].read_text(encoding="utf-8").splitlines()
    # The layout of the shipped example the mekong-khm-csv-population profile reads.
    shipped = Path(str(resources.files("epibridge.examples") / "khm_population_2019.csv"))
    assert khm_pop[0] == shipped.read_text(encoding="utf-8").splitlines()[0]
    assert any(line.startswith("Svay Rieng,2026,") for line in khm_pop)
    vnm_pop = files[("VNM", "denominators")].read_text(encoding="utf-8")
    assert "Tây Ninh,2024," in vnm_pop and "Tây Ninh,2025," in vnm_pop
