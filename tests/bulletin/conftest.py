"""A hub with ten weeks of Cambodian dengue counts (the dashboard tests' data) and alerts.

The counts come from ``tests/web/conftest.py``: twelve provinces report weekly, one cell
of the last week is withheld, KH-25 has no polygon, the other provinces are imputed. Two
alerts: a cross-border cluster, verified (so delivered to both countries) and
acknowledged by Cambodia; a temporal alarm in Cambodia discarded the week before the
bulletin (so not in it).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from epibridge.bulletin.content import Bulletin, Source, gather
from epibridge.hub.alert_delivery import acknowledge
from epibridge.hub.alert_signals import Signal
from epibridge.hub.alert_store import list_alerts
from epibridge.hub.alerts import raise_alerts, set_status
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import _send
from tests.web import conftest as web

world = web.world
hub = web.hub
url = web.url
WEEKS = web.WEEKS
WEEK = WEEKS[-1]  # 2026-W02
AS_OF = NOW + timedelta(hours=6)


def _signals() -> list[Signal]:
    return [
        Signal(
            "cluster",
            "DENGUE",
            "space-time permutation scan",
            ("KH-1", "LA-1"),
            ("KHM", "LAO"),
            WEEKS[-2],
            WEEK,
            p_value=0.004,
            observed=40.0,
            expected=9.0,
        ),
        Signal(
            "temporal",
            "DENGUE",
            "noufaily",
            ("KH-9",),
            ("KHM",),
            WEEKS[-6],
            WEEKS[-6],
            p_value=0.01,
            observed=12.0,
            expected=3.5,
        ),
    ]


@pytest.fixture
def loaded(hub: Hub, tmp_path: Path) -> Hub:
    """The hub holding the counts and the alerts."""
    _send(hub, tmp_path, web.SUBMISSION, web.weekly_counts(), at_hours=0)
    engine = hub.context.store.engine
    early = NOW - timedelta(days=14)
    raise_alerts(engine, _signals(), early)
    by_kind = {a.kind: a.alert_id for a in list_alerts(engine)}
    cluster, alarm = by_kind["cluster"], by_kind["temporal"]
    set_status(engine, alarm, "under_review", "analyst", early)
    set_status(engine, alarm, "discarded", "analyst", early)
    set_status(engine, cluster, "under_review", "analyst", NOW - timedelta(days=1))
    set_status(engine, cluster, "verified", "analyst", NOW)
    acknowledge(engine, cluster, "KHM", "Dr Sok Dara", "KHM node", NOW + timedelta(hours=1))
    return hub


@pytest.fixture
def source(loaded: Hub, tmp_path: Path) -> Source:
    folder = tmp_path / "hub-home"
    folder.mkdir(exist_ok=True)
    return Source(loaded.context.store.engine, loaded.context.agreements, folder, "Test hub")


@pytest.fixture
def bulletin(source: Source) -> Bulletin:
    return gather(source, WEEK, AS_OF, "DENGUE")
