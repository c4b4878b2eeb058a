"""A hub with a few weeks of Cambodian dengue counts, users of every role, and a client.

The hub and its parties come from the hub tests (``tests/hub/test_intake.py``); the
counts use registry admin-1 codes so they land on the map: twelve provinces report
weekly, one cell is withheld (suppressed), one province (KH-25, Tboung Khmum) has no
polygon in the boundary file, and the remaining provinces are imputed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from epibridge.hub.app import create_app
from epibridge.hub.users import add_user
from epibridge.model.schema import RELEASE_COUNTS
from tests.hub import test_intake
from tests.hub.payloads import release_cell
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import _send

world = test_intake.world
hub = test_intake.hub

#: NOW is 2026-01-07: weeks 2025-W46 to 2026-W02; the last four are provisional.
WEEKS = [date(2026, 1, 5) - timedelta(weeks=n) for n in range(9, -1, -1)]
REPORTING = [f"KH-{n}" for n in range(1, 13)] + ["KH-25"]
WITHHELD = "KH-2"
ROLES = {
    "admin": ("hub_admin", None),
    "analyst": ("hub_analyst", None),
    "khm_manager": ("country_data_manager", "KHM"),
    "khm_epi": ("country_epidemiologist", "KHM"),
    "lao_manager": ("country_data_manager", "LAO"),
    "observer": ("observer", None),
}
SUBMISSION = "dddddddd-0000-4000-8000-000000000001"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """SQLite is enough here: the queries are the hub's own, tested on both elsewhere."""
    return f"sqlite:///{tmp_path / 'hub.sqlite'}"


def weekly_counts(seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    rows = []
    for start in WEEKS:
        for area in REPORTING:
            withheld = area == WITHHELD and start == WEEKS[-1]
            rows.append(release_cell(area, start, None if withheld else rng.randrange(5, 30)))
    return pa.Table.from_pylist(rows, schema=RELEASE_COUNTS)


@pytest.fixture
def tokens(hub: Hub, tmp_path: Path) -> dict[str, str]:
    _send(hub, tmp_path, SUBMISSION, weekly_counts(), at_hours=0)
    return {
        name: add_user(hub.context.store.engine, name, role, country, NOW)[1]
        for name, (role, country) in ROLES.items()
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    where = tmp_path / "hub-home"
    where.mkdir()
    return where


@pytest.fixture
def client(hub: Hub, tokens: dict[str, str], folder: Path) -> Iterator[TestClient]:
    context = replace(hub.context, folder=folder)
    with TestClient(create_app(context, Clock(NOW))) as made:
        yield made


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


def log_in(client: TestClient, name: str, token: str) -> None:
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": name, "token": token, "csrf": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:500]
