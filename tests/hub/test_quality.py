"""Quality scorecards on planted problems: each measure finds what was planted, and only it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from fastapi.testclient import TestClient

from epibridge.hub.app import create_app
from epibridge.hub.quality import scorecards
from epibridge.hub.users import add_user
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.registry.geography import units
from tests.hub import test_intake
from tests.hub.payloads import release_cell, release_parts
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_quality_sql import assert_sql_rows_equal_the_reference
from tests.hub.test_regional import A, B, C, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

W52 = ("2025-W52", date(2025, 12, 22))  # ends 2025-12-28: received 10 days later
W01 = ("2026-W01", date(2025, 12, 29))  # ends 2026-01-04: received 3 days later


def _cell(
    area: str, week: tuple[str, date], cases: int, deaths: int | None = None
) -> dict[str, Any]:
    label, start = week
    return release_cell(area, start, cases, deaths, period=label)


def test_each_measure_finds_what_was_planted(hub: Hub, tmp_path: Path) -> None:
    provinces = [u.code for u in units("KHM") if u.level == 1 and u.valid_on(W01[1])]
    a, b, c = provinces[:3]
    first = [
        _cell(a, W52, 4),
        _cell(b, W52, 6),
        _cell(a, W01, 60, deaths=70),  # more deaths than cases
        _cell(b, W01, 40),
        _cell(c, W01, 10),
        _cell(c, W01, 10),  # the same cell twice in one submission
    ]
    parts = release_parts(
        tmp_path / "a", hub.agreement, table=pa.Table.from_pylist(first, RELEASE_COUNTS)
    )
    receipt = json.loads(parts[1][1].read_text())
    receipt["source_quality"] = {
        "read": 200,
        "accepted": 190,
        "quarantined": 10,
        "quarantined_by_rule": {"unknown_area": 7, "future_date": 3},
    }
    parts[1][1].write_text(json.dumps(receipt))
    _send(hub, tmp_path, A, pa.table({}), at_hours=0, parts=parts)
    # Another submission (not a revision) sends one W52 cell again.
    again = pa.Table.from_pylist([_cell(a, W52, 5)], RELEASE_COUNTS)
    _send(hub, tmp_path, B, again, at_hours=5)

    cards = scorecards(hub.context.store.engine, NOW + timedelta(days=1))
    rows = {r["period"]: r for r in cards.periods.to_pylist()}
    assert cards.periods.to_pylist() == assert_sql_rows_equal_the_reference(
        hub.context.store.engine, NOW + timedelta(days=1)
    )
    expected = len(provinces)
    assert rows["2025-W52"]["areas_reported"] == 2
    assert rows["2026-W01"]["areas_reported"] == 3
    assert rows["2026-W01"]["completeness"] == 3 / expected
    assert (rows["2025-W52"]["delay_days"], rows["2025-W52"]["on_time"]) == (10, False)
    assert (rows["2026-W01"]["delay_days"], rows["2026-W01"]["on_time"]) == (3, True)
    assert rows["2026-W01"]["deaths_over_cases"] == 1 and rows["2025-W52"]["deaths_over_cases"] == 0
    assert rows["2026-W01"]["duplicate_cells"] == 1 and rows["2025-W52"]["duplicate_cells"] == 0
    assert rows["2025-W52"]["repeated_cells"] == 1 and rows["2026-W01"]["repeated_cells"] == 0
    # W52: 5 + 6 = 11 cases (the repeat's later value), W01: 60 + 40 + 10 = 110: a jump.
    assert (rows["2025-W52"]["cases"], rows["2026-W01"]["cases"]) == (11, 110)
    assert rows["2026-W01"]["jump"] and not rows["2025-W52"]["jump"]
    khm = cards.countries["KHM"]
    assert khm.on_time_rate == 0.5 and khm.jumps == 1 and khm.deaths_over_cases == 1
    assert khm.quarantined_share == 10 / 200
    assert khm.quarantined_by_rule == {"unknown_area": 7, "future_date": 3}
    assert cards.regional_median["on_time_rate"] == 0.5  # one country: its own value

    # A revision that fixes the deaths drops the inconsistency from the current picture.
    fixed = pa.Table.from_pylist(
        [
            _cell(a, W52, 4),
            _cell(b, W52, 6),
            _cell(a, W01, 60, deaths=1),
            _cell(b, W01, 40),
            _cell(c, W01, 10),
        ],
        RELEASE_COUNTS,
    )
    _send(hub, tmp_path, C, fixed, at_hours=8, revision_of=A)
    later = scorecards(hub.context.store.engine, NOW + timedelta(days=1))
    assert later.countries["KHM"].deaths_over_cases == 0
    for hours in (1, 6, 24):  # before and after the revision
        assert_sql_rows_equal_the_reference(hub.context.store.engine, NOW + timedelta(hours=hours))
    # ... and what was known before the revision is unchanged.
    assert (
        scorecards(hub.context.store.engine, NOW + timedelta(hours=6))
        .countries["KHM"]
        .deaths_over_cases
        == 1
    )


def test_scorecards_over_the_api(hub: Hub, tmp_path: Path) -> None:
    _send(
        hub, tmp_path, A, pa.Table.from_pylist([_cell("KH-X", W01, 3)], RELEASE_COUNTS), at_hours=0
    )
    engine = hub.context.store.engine
    tokens = {
        role: add_user(engine, role, role, country, NOW)[1]
        for role, country in (
            ("hub_analyst", None),
            ("country_epidemiologist", "LAO"),
            ("observer", None),
        )
    }
    client = TestClient(create_app(hub.context, Clock(NOW + timedelta(days=1))))

    def get(role: str) -> dict[str, Any]:
        answer = client.get("/v1/scorecards", headers={"Authorization": f"Bearer {tokens[role]}"})
        assert answer.status_code == 200, answer.json()
        body: dict[str, Any] = answer.json()
        return body

    assert [c["country"] for c in get("hub_analyst")["countries"]] == ["KHM"]
    lao = get("country_epidemiologist")
    assert lao["countries"] == [] and lao["periods"] == []
    assert lao["regional_median"]["completeness"] is not None
    assert get("observer")["countries"] == []
