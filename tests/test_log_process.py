"""The transparency log as operators meet it: a node audits a running hub and countersigns;
the hub operator verifies the log; an edit made directly in the database is caught by both.
Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from epibridge.hub.home import HubHome
from epibridge.hub.serve import free_local_port
from tests.exchange_setup import Parties, ok, run, seal, set_up
from tests.hub import test_store
from tests.test_hub_process import HubProcess

url = test_store.url


@pytest.fixture
def running(tmp_path: Path, url: str) -> Iterator[tuple[Parties, HubProcess, str]]:
    port = free_local_port()
    parties = set_up(tmp_path, database=url, url=f"http://127.0.0.1:{port}")
    hub = HubProcess(parties.hub, port)
    hub.start()
    yield parties, hub, url
    hub.stop()


def test_audit_countersign_and_tampering(running: tuple[Parties, HubProcess, str]) -> None:
    p, _, _ = running
    sid = seal(p)
    assert "1 acknowledged" in ok("node", "push", *p.node_opt)
    first = ok("node", "audit", *p.node_opt)
    assert "first check" in first and "1 acknowledged submissions proven" in first
    assert "countersigned" in first
    again = ok("node", "audit", *p.node_opt)
    assert "consistent with the" in again
    verified = ok("audit", "verify", *p.hub_opt)
    assert "the log and the store agree" in verified and "countersignatures" in verified

    # Someone with database access changes a released count.
    engine = create_engine(HubHome(p.hub).config.database)
    with engine.begin() as c:
        c.execute(
            text(
                "UPDATE regional_counts SET cases = COALESCE(cases, 0) + 7 WHERE submission_id = :s"
                " AND source_row = 0"
            ),
            {"s": sid},
        )
    failed = run("audit", "verify", *p.hub_opt)
    assert failed.returncode == 3, failed.stdout
    assert f"submission {sid}" in failed.stderr and "counts_sha256" in failed.stderr

    # ... and rewrites the leaf to match: the signed heads, and the node, still catch it.
    with engine.begin() as c:
        c.execute(text("UPDATE log_entries SET leaf_hash = :h WHERE seq = 1"), {"h": "00" * 32})
    alarm = run("node", "audit", *p.node_opt)
    assert alarm.returncode == 3 and "Traceback" not in alarm.stderr, alarm.stderr
    assert "rewrote history" in alarm.stderr or "does not verify" in alarm.stderr
    engine.dispose()
