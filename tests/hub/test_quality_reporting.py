"""Scorecards' completeness from the reports the countries sent: DHIS2's reporting rate
where there are reports, the areas' share elsewhere, and the weeks with reports but no
cells."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from epibridge.hub.quality import scorecards
from epibridge.model.schema import RELEASE_COUNTS
from tests.hub import test_intake
from tests.hub.payloads import week_cell
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A
from tests.hub.test_regional_context import WEEK, _send_parts, parts_with, reporting_row

hub = test_intake.hub
world = test_intake.world
url = test_intake.url


def test_completeness_comes_from_reports_where_sent(hub: Hub, tmp_path: Path) -> None:
    parts = parts_with(
        tmp_path / "a",
        hub,
        reporting=[
            # week 0: dengue's own reports, 8 of 10 (6 on time)
            {**reporting_row("KH-12", 5, expected=6), "reports_on_time": 3},
            {**reporting_row("KH-1", 3, expected=4), "reports_on_time": 3},
            # week 1: a zero-report form for every disease, all in, timeliness unknown
            {
                **reporting_row("KH-12", 6, expected=6, disease=None, week=1),
                "reports_on_time": None,
            },
            # week 3: reports but no count cell (nothing to release)
            reporting_row("KH-12", 2, expected=6, disease=None, week=3),
        ],
    )
    cells = [
        week_cell(area, WEEK + timedelta(weeks=w), 7)
        for area in ("KH-12", "KH-1")
        for w in (0, 1, 2)
    ]
    pq.write_table(pa.Table.from_pylist(cells, schema=RELEASE_COUNTS), parts[0][1])
    _send_parts(hub, tmp_path, A, 0, parts)

    cards = scorecards(hub.context.store.engine, NOW + timedelta(hours=1))
    rows = {r["period"]: r for r in cards.periods.to_pylist()}
    assert list(rows) == ["2026-W02", "2026-W03", "2026-W04", "2026-W05"]
    w0, w1, w2, w3 = rows.values()
    assert (w0["completeness_basis"], w0["reports_expected"], w0["reports_received"]) == (
        "reports",
        10,
        8,
    )
    assert w0["completeness"] == 0.8 and w0["reports_on_time_rate"] == 6 / 8
    assert (w1["completeness"], w1["reports_on_time_rate"]) == (1.0, None)
    # no reports for week 2: two areas of Cambodia's 25 provinces sent cells
    assert w2["completeness_basis"] == "areas" and w2["completeness"] == 2 / 25
    # week 3: the country reported (2 of 6) and had no cells to release
    assert (w3["cells"], w3["cases"], w3["completeness"]) == (0, 0, 2 / 6)
    assert w3["period_start"] == date(2026, 1, 26)
    khm = cards.countries["KHM"]
    assert khm.periods == 4 and khm.periods_with_reports == 3
    assert khm.reports_on_time_rate == 0.875  # median of 0.75 and 1.0 (week 1 said none)
    assert cards.regional_median["reports_on_time_rate"] == 0.875
