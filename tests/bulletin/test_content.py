"""What the bulletin says: figures, map, curves, alerts and quality, from the store as of a time."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from epibridge.bulletin.content import (
    Bulletin,
    BulletinError,
    Source,
    gather,
    parse_week,
    status_at,
)
from epibridge.bulletin.figures import change, sum_interval
from epibridge.hub.alert_store import Event
from tests.bulletin.conftest import AS_OF, WEEK, WEEKS
from tests.hub.test_intake import NOW
from tests.web.conftest import REPORTING, WITHHELD, weekly_counts


def test_parse_week() -> None:
    assert parse_week("2026-W47") == date(2026, 11, 16)
    assert parse_week("2020-W53") == date(2020, 12, 28)
    for bad in ("2026-47", "2026-W60", "2026-W00", "2025-W53", "W47", ""):
        with pytest.raises(BulletinError, match="not an ISO week"):
            parse_week(bad)


def test_sum_interval_of_one_part_is_that_part() -> None:
    assert sum_interval([(100.0, 40.0, 300.0)]) == (100.0, 40.0, 300.0)
    # two equal parts symmetric on the log scale: the same relative spread, narrower
    estimate, low, high = sum_interval([(100.0, 50.0, 200.0)] * 2) or (0.0, 0.0, 0.0)
    assert estimate == 200.0
    assert 100.0 < low < estimate < high < 400.0
    assert math.isclose(math.sqrt(low * high), 200.0, rel_tol=0.2)


def test_sum_interval_is_narrower_than_the_sum_of_bounds() -> None:
    parts = [(100.0, 60.0, 170.0), (300.0, 200.0, 450.0), (0.0, 0.0, 3.7)]
    estimate, low, high = sum_interval(parts) or (0.0, 0.0, 0.0)
    assert estimate == 400.0
    assert 260.0 < low < estimate < high < 620.0
    assert sum_interval([]) is None
    assert change(120, 100) == pytest.approx(0.2) and change(5, 0) is None


def test_key_figures_and_country_rows(bulletin: Bulletin) -> None:
    rows = [r for r in weekly_counts().to_pylist() if r["period_start"] == WEEK]
    before = [r for r in weekly_counts().to_pylist() if r["period_start"] == WEEKS[-2]]
    f = bulletin.figures
    assert bulletin.week == "2026-W02" and bulletin.disease == "DENGUE"
    assert f.countries_reporting == ["KHM"] and f.countries_monthly == []
    assert f.cases == sum(r["cases"] or 0 for r in rows)
    assert f.cases_previous == sum(r["cases"] or 0 for r in before)
    assert f.cases_previous is not None
    assert f.change == pytest.approx((f.cases - f.cases_previous) / f.cases_previous)
    assert f.areas_withheld == 1
    assert f.corrected is not None
    estimate, low, high = f.corrected
    khm = bulletin.countries[0]
    assert (khm.country, khm.period, khm.cases) == ("KHM", "2026-W02", f.cases)
    assert (estimate, low, high) == (khm.corrected, khm.corrected_low, khm.corrected_high)
    assert low < estimate < high and estimate > f.cases  # imputed areas and expansion


def test_map_rows_and_curves(bulletin: Bulletin) -> None:
    statuses = {r.code: r.status for r in bulletin.map.rows}
    assert statuses[WITHHELD] == "withheld"
    assert all(statuses[a] == "reported" for a in REPORTING if a != WITHHELD)
    assert "imputed" in statuses.values()
    assert bulletin.map.paths and bulletin.map.breaks
    [curve] = bulletin.curves
    assert curve.country == "KHM" and [p.period for p in curve.points][-1] == "2026-W02"
    assert len(curve.points) == len(WEEKS)  # fewer than 26 weeks were sent
    # as of 2026-01-07, the weeks ending after 2025-12-10 (from 2025-12-08's) are provisional
    assert [b.provisional for b in curve.model.bars] == [False] * 5 + [True] * 5


def test_alerts_open_or_changed_that_week(bulletin: Bulletin) -> None:
    [alert] = bulletin.alerts  # the discarded alarm changed weeks ago
    assert alert.status == "verified" and alert.cross_border and alert.early_warning
    assert alert.countries == ("KHM", "LAO")
    assert [(a.country, a.by) for a in alert.acknowledged] == [("KHM", "Dr Sok Dara")]
    assert alert.waiting == ["LAO"]
    assert any(c.startswith("status_changed") for c in alert.changes)


def test_as_of_replays_acknowledgements(source: Source) -> None:
    earlier = gather(source, WEEK, NOW + timedelta(minutes=30), "DENGUE")
    [alert] = earlier.alerts  # acknowledged an hour after NOW
    assert alert.acknowledged == [] and alert.waiting == ["KHM", "LAO"]


def test_status_at_replays_status_changes() -> None:
    history = [
        Event("A", 1, "created", "detection", NOW, "cluster"),
        Event("A", 2, "status_changed", "x", NOW + timedelta(hours=1), "new -> under_review"),
        Event("A", 3, "comment", "x", NOW + timedelta(hours=2), "looks real"),
        Event(
            "A", 4, "status_changed", "x", NOW + timedelta(hours=3), "under_review -> verified: ok"
        ),
    ]
    assert status_at("verified", history, NOW) == "new"
    assert status_at("verified", history, NOW + timedelta(hours=2)) == "under_review"
    assert status_at("verified", history, NOW + timedelta(days=1)) == "verified"


def test_quality_beside_the_median(bulletin: Bulletin) -> None:
    [khm] = bulletin.quality
    assert khm.country == "KHM" and khm.completeness is not None
    assert 0 < khm.completeness < 1  # imputed provinces did not report
    assert bulletin.median.completeness == khm.completeness  # one country: its own


def test_no_data_and_unknown_disease(source: Source) -> None:
    with pytest.raises(BulletinError, match="no counts for 2026-W20"):
        gather(source, date(2026, 5, 11), AS_OF)
    with pytest.raises(BulletinError, match="no CHOLERA counts for 2026-W02"):
        gather(source, WEEK, AS_OF, "CHOLERA")
    with pytest.raises(BulletinError, match="no counts"):  # before anything was received
        gather(source, WEEK, NOW - timedelta(days=30))
