"""The burden table: reported and corrected incidence by area and period (hub/burden.py)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from epibridge.algorithms.burden import poisson_interval
from epibridge.cli import app
from epibridge.hub.burden import BURDEN, burden
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.registry.expansion import FILE_NAME, ExpansionFactor, expansion_factors
from epibridge.registry.geography import population, units
from tests.hub import test_intake
from tests.hub.payloads import as_of_cell
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

FACTORS = expansion_factors()


def _khm() -> tuple[list[str], dict[str, int]]:
    codes = sorted(
        u.code
        for u in units("KHM")
        if u.level == 1 and u.valid_on(as_of_cell("x", 0)["period_start"])
    )
    pops = {r.code: r.population for r in population("KHM")}
    return codes, pops


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    from epibridge.hub.regional import COUNTS_AS_OF

    return pa.Table.from_pylist(rows, COUNTS_AS_OF)


def _by(table: pa.Table, status: str) -> dict[str, dict[str, Any]]:
    return {r["area"]: r for r in table.to_pylist() if r["status"] == status}


def test_reported_rows_carry_the_exact_poisson_interval_and_the_factor() -> None:
    codes, pops = _khm()
    cells = [as_of_cell(code, 10 + i, week=0) for i, code in enumerate(codes)]
    out = burden(_table(cells), FACTORS)
    assert out.schema == BURDEN
    reported = _by(out, "reported")
    assert set(reported) == set(codes) and not _by(out, "imputed")
    row = reported[codes[3]]
    pop = pops[codes[3]]
    assert row["cases"] == 13 and row["population"] == pop
    assert row["incidence_per_100k"] == pytest.approx(13 * 100_000 / pop)
    low, high = poisson_interval(pa.array([13.0]).to_numpy())
    assert row["incidence_low"] == pytest.approx(low[0] * 100_000 / pop)
    assert row["incidence_high"] == pytest.approx(high[0] * 100_000 / pop)
    factor = FACTORS[("KHM", "DENGUE")]
    assert row["expansion_factor"] == factor.factor and row["expansion_source"] == factor.source
    assert row["cases_corrected"] == pytest.approx(13 * factor.factor)
    assert row["cases_corrected_low"] < row["cases_corrected"] < row["cases_corrected_high"]
    assert row["incidence_corrected_low"] < row["incidence_corrected"]
    assert row["completeness"] == 1.0


def test_without_corrected_intervals_only_those_four_columns_are_empty() -> None:
    codes, _ = _khm()
    cells = [as_of_cell(code, 10 + i, week=0) for i, code in enumerate(codes[:-3])]
    full = burden(_table(cells), FACTORS)
    lean = burden(_table(cells), FACTORS, corrected_intervals=False)
    assert lean.schema == BURDEN and lean.num_rows == full.num_rows
    skipped = {
        "cases_corrected_low",
        "cases_corrected_high",
        "incidence_corrected_low",
        "incidence_corrected_high",
    }
    for name in BURDEN.names:
        if name in skipped:
            assert lean.column(name).null_count == lean.num_rows
            assert full.column(name).null_count < full.num_rows
        else:
            assert lean.column(name).equals(full.column(name)), name


def test_missing_reports_are_imputed_at_the_countrys_pooled_rate() -> None:
    codes, pops = _khm()
    silent = codes[:5]
    reporting = codes[5:]
    cells = [as_of_cell(code, 20, week=0) for code in reporting]
    out = burden(_table(cells), FACTORS)
    f = FACTORS[("KHM", "DENGUE")].factor
    pool_cases = 20 * len(reporting)
    pool_pop = sum(pops[c] for c in reporting)
    imputed = _by(out, "imputed")
    assert set(imputed) == set(silent)
    row = imputed[silent[0]]
    assert row["cases"] is None and row["incidence_per_100k"] is None
    assert row["cases_corrected"] == pytest.approx(pool_cases * pops[silent[0]] / pool_pop * f)
    assert row["incidence_corrected"] == pytest.approx(pool_cases / pool_pop * f * 100_000)
    assert row["completeness"] == pytest.approx(len(reporting) / len(codes))
    total = _by(out, "total")["KHM"]
    assert total["areas_reported"] == len(reporting) and total["areas_expected"] == len(codes)
    assert total["cases"] == pool_cases
    area_sum = sum(
        r["cases_corrected"] for r in out.to_pylist() if r["status"] in ("reported", "imputed")
    )
    assert total["cases_corrected"] == pytest.approx(area_sum)
    # the total's corrected rate is the pooled rate times the factor
    assert total["incidence_corrected"] == pytest.approx(pool_cases / pool_pop * f * 100_000)
    assert total["incidence_per_100k"] == pytest.approx(pool_cases / pool_pop * 100_000)
    assert total["cases_corrected_low"] < total["cases_corrected"] < total["cases_corrected_high"]


def test_withheld_cells_keep_their_place_without_a_number() -> None:
    codes, _ = _khm()
    cells = [as_of_cell(code, 30, week=0) for code in codes[1:]] + [as_of_cell(codes[0], None)]
    out = burden(_table(cells), FACTORS)
    row = _by(out, "withheld")[codes[0]]
    for name in ("cases", "incidence_per_100k", "cases_corrected", "incidence_corrected_high"):
        assert row[name] is None
    assert not _by(out, "imputed")  # it reported: nothing to impute
    total = _by(out, "total")["KHM"]
    assert total["cases"] == 30 * (len(codes) - 1) and total["areas_withheld"] == 1
    # the corrected total counts the withheld area at its least (1 case)
    f = FACTORS[("KHM", "DENGUE")].factor
    assert total["cases_corrected"] == pytest.approx((30 * (len(codes) - 1) + 1) * f)


def test_a_total_of_withheld_areas_is_never_corrected_below_what_is_known() -> None:
    """Every area withheld (each 1 to k-1 cases): the total knows 0 cases for sure, but
    at least one per area exists, and its corrected figure and interval say so."""
    codes, _ = _khm()
    out = burden(_table([as_of_cell(code, None) for code in codes[:4]]), FACTORS)
    total = _by(out, "total")["KHM"]
    assert total["cases"] == 0 and total["areas_withheld"] == 4
    assert total["cases_corrected"] >= 4
    assert total["cases_corrected_high"] > total["cases_corrected"]


def test_strata_are_summed_when_no_total_was_sent() -> None:
    codes, _ = _khm()
    cells = [
        as_of_cell(codes[0], 4, sex="F", age_band="0-4"),
        as_of_cell(codes[0], 6, sex="M", age_band="0-4"),
        as_of_cell(codes[1], 9),
        as_of_cell(codes[1], 5, sex="F", age_band="0-4"),  # a total wins over strata
    ]
    reported = _by(burden(_table(cells), FACTORS), "reported")
    assert reported[codes[0]]["cases"] == 10
    assert reported[codes[1]]["cases"] == 9


def test_a_country_without_a_factor_is_corrected_for_completeness_only() -> None:
    codes, pops = _khm()
    cells = [as_of_cell(code, 8, week=0) for code in codes[2:]]
    out = burden(_table(cells), {})
    imputed = _by(out, "imputed")[codes[0]]
    assert imputed["expansion_factor"] is None and imputed["expansion_source"] is None
    pool_pop = sum(pops[c] for c in codes[2:])
    assert imputed["cases_corrected"] == pytest.approx(
        8 * len(codes[2:]) * pops[codes[0]] / pool_pop
    )
    reported = _by(out, "reported")[codes[5]]
    assert reported["cases_corrected"] == 8
    low, high = poisson_interval(pa.array([8.0]).to_numpy())
    assert reported["cases_corrected_low"] == pytest.approx(low[0])
    assert reported["cases_corrected_high"] == pytest.approx(high[0])


def test_a_supplied_factor_and_its_uncertainty_are_used() -> None:
    codes, _ = _khm()
    narrow = ExpansionFactor("KHM", "DENGUE", 3.0, 2.9, 3.1, "95% CI", "all", "test")
    wide = ExpansionFactor("KHM", "DENGUE", 3.0, 1.5, 6.0, "95% CI", "all", "test")
    cells = _table([as_of_cell(code, 50) for code in codes])
    a = _by(burden(cells, {("KHM", "DENGUE"): narrow}), "reported")[codes[0]]
    b = _by(burden(cells, {("KHM", "DENGUE"): wide}), "reported")[codes[0]]
    assert a["cases_corrected"] == b["cases_corrected"] == 150
    assert b["cases_corrected_high"] - b["cases_corrected_low"] > 2 * (
        a["cases_corrected_high"] - a["cases_corrected_low"]
    )


def test_each_period_is_estimated_on_its_own() -> None:
    codes, _ = _khm()
    cells = [as_of_cell(code, 5, week=0) for code in codes] + [
        as_of_cell(code, 7, week=1) for code in codes[:10]
    ]
    out = burden(_table(cells), FACTORS)
    totals = {r["period"]: r for r in out.to_pylist() if r["status"] == "total"}
    assert totals["2026-W02"]["completeness"] == 1.0
    assert totals["2026-W03"]["completeness"] == pytest.approx(10 / len(codes))
    assert not math.isnan(totals["2026-W03"]["cases_corrected"])
    assert burden(_table([]), FACTORS).num_rows == 0


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_hub_burden_on_the_command_line(hub: Hub, tmp_path: Path, url: str) -> None:
    codes, _ = _khm()
    rows = [as_of_cell(code, 12, week=w) for w in range(3) for code in codes[w:]]
    _send(hub, tmp_path, A, pa.Table.from_pylist(rows, RELEASE_COUNTS), at_hours=0)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    (home / FILE_NAME).write_text(
        "country,disease,factor,low,high,interval,population,source,note\n"
        "KHM,DENGUE,2.0,1.5,3.0,95% CI,all ages,a test study,\n",
        "utf-8",
    )
    out = tmp_path / "burden.parquet"
    at = (NOW + timedelta(hours=1)).isoformat()
    base = ["hub", "burden", "--as-of", at, "--home", str(home)]
    runner = CliRunner()
    done = runner.invoke(
        app, [*base, "--disease", "DENGUE", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert done.exit_code == 0, done.output
    assert "KHM 2 (1.5-3)" in done.stdout  # the hub's own factor, not the default 9.1
    written = pq.read_table(out)
    statuses = written.column("status").to_pylist()
    assert statuses.count("total") == 3 and statuses.count("imputed") == 0 + 1 + 2
    total = [r for r in written.to_pylist() if r["status"] == "total"][-1]
    assert total["cases"] == 12 * (len(codes) - 2)
    assert total["completeness"] == pytest.approx((len(codes) - 2) / len(codes))
    missing = runner.invoke(app, [*base, "--disease", "CHOLERA"])
    assert missing.exit_code == 1
    assert "no counts of CHOLERA" in missing.stderr and "Traceback" not in missing.output
