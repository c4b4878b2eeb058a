"""Outbreak detection over time in the regional counts: a planted outbreak in one area of
a hub holding years of seasonal counts is flagged there only; missing and withheld weeks
are NA, not 0; strata add up where no total was sent; ``hub detect`` on the command line."""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from epibridge.cli import app
from epibridge.hub.regional import COUNTS_AS_OF, counts_as_of
from epibridge.hub.temporal import TemporalError, regional_detect
from epibridge.model.schema import RELEASE_COUNTS
from tests.hub import test_intake
from tests.hub.payloads import as_of_cell
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

#: (country, area, mean weekly cases); the outbreak is planted in the first.
AREAS = (("KHM", "KH-1", 12), ("KHM", "KH-10", 20), ("KHM", "KH-11", 8), ("THA", "TH-10", 15),
         ("THA", "TH-11", 10))  # fmt: skip
HISTORY = 300  # weeks, ending with the week of 2026-01-05 (2026-W02): Noufaily needs 5 years
LAST = date(2026, 1, 5)
OUTBREAK = {"2025-W51", "2025-W52", "2026-W01", "2026-W02"}  # the last four weeks


def _seasonal(seed: int = 6) -> list[dict[str, Any]]:
    """Weekly Poisson counts with a yearly season for every area of ``AREAS``; the last
    four weeks of KH-1 hold three times its mean plus 20 more cases."""
    rng = np.random.default_rng(seed)
    rows = []
    for country, area, mean in AREAS:
        for t in range(HISTORY):
            week = t - (HISTORY - 1)  # weeks after 2026-01-05, the last one 0
            cases = int(rng.poisson(mean * (1 + 0.6 * math.sin(2 * math.pi * t / 52.18))))
            if area == "KH-1" and week > -4:
                cases += 3 * mean + 20
            rows.append(as_of_cell(area, cases, week=week, country=country))
    return rows


def _alarms(points: pa.Table) -> set[tuple[str, str]]:
    return {
        (r["area"], r["period"])
        for r in points.select(["area", "period", "alarm"]).to_pylist()
        if r["alarm"]
    }


def test_a_planted_outbreak_is_flagged_in_its_area_only(hub: Hub, tmp_path: Path) -> None:
    _send(hub, tmp_path, A, pa.Table.from_pylist(_seasonal(), RELEASE_COUNTS), at_hours=0)
    cells = counts_as_of(hub.context.store.engine, NOW + timedelta(hours=1))
    found = regional_detect(cells, "DENGUE")  # Noufaily, the last 8 weeks
    assert found.method == "noufaily" and found.series == len(AREAS) and found.skipped == ()
    assert found.weeks == tuple(LAST - timedelta(weeks=7 - i) for i in range(8))
    assert found.points.num_rows == len(AREAS) * 8
    assert _alarms(found.points) == {("KH-1", week) for week in OUTBREAK}
    first = found.points.slice(0, 1).to_pylist()[0]
    assert (first["country"], first["area"], first["period"]) == ("KHM", "KH-1", "2025-W47")
    assert first["week_start"] == date(2025, 11, 17) and first["alarm"] is False
    assert first["expected"] is not None and first["upperbound"] > first["observed"]
    assert 0 <= first["pvalue"] <= 1
    # The shorter detectors see the same outbreak, and only it.
    assert _alarms(regional_detect(cells, "DENGUE", method="cusum").points) == {
        ("KH-1", week) for week in OUTBREAK
    }


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, COUNTS_AS_OF)


def _steady(area: str, weeks: range, skip: Collection[int] = (), **kw: Any) -> list[dict[str, Any]]:
    """Counts alternating 10 and 12, week by week, leaving out the weeks in ``skip``."""
    return [as_of_cell(area, 10 + 2 * (w % 2), week=w, **kw) for w in weeks if w not in skip]


def _by_week(points: pa.Table, area: str) -> dict[date, dict[str, Any]]:
    return {r["week_start"]: r for r in points.to_pylist() if r["area"] == area}


def test_withheld_and_missing_weeks_are_na_not_zero() -> None:
    weeks = range(20)
    rows = _steady("KH-1", weeks, skip={17}) + _steady("KH-2", weeks, skip={18})
    rows.append(as_of_cell("KH-2", None, week=18))  # withheld: cases_suppressed
    found = regional_detect(_table(rows), "DENGUE", method="ears-c1", weeks=4)
    week = {w: date(2026, 1, 5) + timedelta(weeks=w) for w in weeks}
    missing = _by_week(found.points, "KH-1")
    withheld = _by_week(found.points, "KH-2")
    for point in (missing[week[17]], withheld[week[18]]):
        assert point["observed"] is None and point["alarm"] is None
    # The NA week is in the 7-week baseline of the weeks after it: no bound there (with a
    # 0 instead, the bound would be computed from a baseline with a false dip).
    assert missing[week[18]]["upperbound"] is None and missing[week[18]]["alarm"] is None
    assert withheld[week[19]]["upperbound"] is None
    # Before the NA week, the baselines are whole and the bounds defined.
    baseline = [10 + 2 * (w % 2) for w in range(9, 16)]
    bound = statistics.mean(baseline) + norm.ppf(0.999) * statistics.stdev(baseline)
    assert missing[week[16]]["upperbound"] == pytest.approx(bound)
    assert missing[week[16]]["alarm"] is False and missing[week[16]]["observed"] == 10


def test_strata_add_up_where_no_total_was_sent() -> None:
    weeks = range(12)
    rows = _steady("KH-1", weeks)
    for w in weeks:  # KH-2: sex strata only; KH-3: a total beside its strata
        rows.append(as_of_cell("KH-2", 4, week=w, sex="M"))
        rows.append(as_of_cell("KH-2", 5 + w % 2, week=w, sex="F"))
        rows.append(as_of_cell("KH-3", 30, week=w))
        rows.append(as_of_cell("KH-3", 7, week=w, age_band="0-4"))
    rows.append(as_of_cell("KH-4", 6, week=11, sex="M"))  # a withheld stratum: sum unknown
    rows.append(as_of_cell("KH-4", None, week=11, sex="F"))
    rows += _steady("KH-4", range(11))
    found = regional_detect(_table(rows), "DENGUE", method="ears-c1", weeks=2)
    observed = {(r["area"], r["week_start"]): r["observed"] for r in found.points.to_pylist()}
    w10, w11 = date(2026, 3, 16), date(2026, 3, 23)
    assert observed[("KH-2", w10)] == 9 and observed[("KH-2", w11)] == 10
    assert observed[("KH-3", w10)] == 30  # the total wins over its strata
    assert observed[("KH-4", w10)] == 10 and observed[("KH-4", w11)] is None


def test_what_cannot_be_monitored_is_said() -> None:
    monthly = {"period_type": "month", "period": "2026-01", "country": "LAO", "area": "LA-01"}
    short = _steady("KH-2", range(12, 20))  # 4 weeks of history before the last 4
    ended = _steady("KH-3", range(10))  # nothing in the monitored weeks
    rows = _steady("KH-1", range(20)) + short + ended + [{**as_of_cell("LA-01", 40), **monthly}]
    found = regional_detect(_table(rows), "DENGUE", method="ears-c1", weeks=4)
    assert found.series == 1 and found.note is None
    reasons = {s.area: s.reason for s in found.skipped}
    assert reasons["KH-2"] == (
        "ears-c1 needs 7 weeks of counts before 2026-04-27; the series starts 2026-03-30"
    )
    assert reasons["KH-3"] == "no counts in the monitored weeks (the last is 2026-03-09)"
    assert "KH-3" not in {r["area"] for r in found.points.to_pylist()}
    assert reasons["LA-01"] == "only month counts (weekly detection)"
    only_monthly = regional_detect(_table([{**as_of_cell("LA-01", 40), **monthly}]), "DENGUE")
    assert only_monthly.points.num_rows == 0 and only_monthly.series == 0
    assert only_monthly.note is not None and "only as month counts" in only_monthly.note
    with pytest.raises(TemporalError, match="holds no counts of CHOLERA"):
        regional_detect(_table(rows), "CHOLERA")
    with pytest.raises(TemporalError, match="leaves no history"):
        regional_detect(_table(rows), "DENGUE", weeks=20)
    with pytest.raises(TemporalError, match="unknown method 'ears-c4'"):
        regional_detect(_table(rows), "DENGUE", method="ears-c4")
    with pytest.raises(TemporalError, match="farrington takes no parameter baseline"):
        regional_detect(_table(rows), "DENGUE", method="farrington", params={"baseline": 5})
    # A parameter replaces one entry of the preset: a 4-week EARS baseline fits KH-2.
    shorter = regional_detect(
        _table(rows), "DENGUE", method="ears-c1", weeks=4, params={"baseline": 4}
    )
    assert shorter.series == 2


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_hub_detect_on_the_command_line(hub: Hub, tmp_path: Path, url: str) -> None:
    _send(hub, tmp_path, A, pa.Table.from_pylist(_seasonal(), RELEASE_COUNTS), at_hours=0)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    out = tmp_path / "points.csv"
    at = (NOW + timedelta(hours=1)).isoformat()
    base = ["hub", "detect", "--as-of", at, "--home", str(home)]
    runner = CliRunner()
    done = runner.invoke(
        app, [*base, "--disease", "DENGUE", "--out", str(out)], env={"COLUMNS": "160"}
    )
    assert done.exit_code == 0, done.output
    assert "noufaily: 5 series, 40 monitored points, 4 alarms" in done.stdout
    assert all(week in done.stdout for week in OUTBREAK) and "KH-10" not in done.stdout
    written = pcsv.read_csv(out)
    assert written.num_rows == 40 and sum(written.column("alarm").to_pylist()) == 4
    missing = runner.invoke(app, [*base, "--disease", "CHOLERA"])
    assert missing.exit_code == 1
    assert "holds no counts of CHOLERA" in missing.stderr and "Traceback" not in missing.output
