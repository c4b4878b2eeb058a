"""A node fetches its alerts from a real hub service, checks the hub's signature against
its trust list, keeps them and acknowledges them. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from epibridge.cli import app
from epibridge.hub.alert_signals import Signal
from epibridge.hub.alert_store import ALERT_TYPE, get_alert, sign_alert
from epibridge.hub.alerts import raise_alerts
from epibridge.hub.tables import alert_deliveries_table
from epibridge.node.alerts import (
    AlertDocumentError,
    acknowledge,
    list_alerts,
    pull,
    store_alert,
    verify_alert,
)
from epibridge.node.http_transport import HttpTransport
from epibridge.transport.keys import sign_compact
from tests.hub import test_intake
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.node.test_http_transport import Memory, _serve

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

W0 = date(2026, 3, 2)


def _early_warning(hub: Hub) -> str:
    signal = Signal(
        "cluster",
        "DENGUE",
        "space-time permutation scan",
        ("KH-13", "LA-CH"),
        ("KHM", "LAO"),
        W0,
        W0,
        p_value=0.001,
        observed=30.0,
        expected=6.0,
    )
    (alert_id,) = raise_alerts(hub.context.store.engine, [signal], NOW).created
    return alert_id


def _tampered(token: str) -> str:
    head, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["alert"]["status"] = "discarded"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def test_the_node_checks_the_hubs_signature(hub: Hub, tmp_path: Path) -> None:
    alert = get_alert(hub.context.store.engine, _early_warning(hub))
    trust = hub.context.trust
    token = sign_alert(alert, hub.world.hub_key, NOW)
    assert verify_alert(token, trust, NOW)["alert"] == alert.state()
    with pytest.raises(AlertDocumentError, match="does not verify"):
        store_alert(tmp_path, _tampered(token), trust, NOW)
    # Signed by a country's key instead of the hub's: not a hub key of the trust list.
    lao = hub.world.lao_key
    forged = sign_compact(
        {"alert": alert.state(), "issued_at": "x"}, lao.private_key, lao.kid, ALERT_TYPE
    )
    with pytest.raises(AlertDocumentError, match="not signed by a hub key"):
        store_alert(tmp_path, forged, trust, NOW)
    assert list_alerts(tmp_path) == []
    kept = store_alert(tmp_path, token, trust, NOW)
    assert kept.alert["countries"] == ["KHM", "LAO"] and kept.acknowledged is None
    assert (tmp_path / "alerts" / f"{alert.alert_id}.jws").read_text().strip() == token


def test_pull_and_acknowledge_over_http(hub: Hub, tmp_path: Path) -> None:
    alert_id = _early_warning(hub)
    clock = Clock(NOW)
    with _serve(hub, clock) as base:
        transport = HttpTransport(
            base_url=base,
            country="KHM",
            signing_key=lambda: hub.world.khm_key,
            clock=clock,
            verify_receipt=lambda sid, token: None,
            uploads=Memory(),
        )
        try:
            report = pull(tmp_path, transport, hub.context.trust, NOW)
            assert report.kept == [alert_id] and report.refused == []
            (kept,) = list_alerts(tmp_path)
            assert kept.alert_id == alert_id and kept.alert["status"] == "new"
            done = acknowledge(tmp_path, transport, alert_id, "Dr. Sok", NOW)
            assert done.acknowledged is not None and done.acknowledged["by"] == "Dr. Sok"
            # Acknowledged: the inbox is empty now.
            assert pull(tmp_path, transport, hub.context.trust, NOW).kept == []
        finally:
            transport.close()
    t = alert_deliveries_table
    with hub.context.store.engine.connect() as c:
        rows = {r.country: r for r in c.execute(select(t).where(t.c.alert_id == alert_id))}
    assert rows["KHM"].delivered_at is not None and rows["KHM"].acknowledged_by == "Dr. Sok"
    assert rows["LAO"].delivered_at is None and rows["LAO"].acknowledged_at is None


def test_node_alerts_lists_what_the_node_keeps(hub: Hub, tmp_path: Path) -> None:
    alert = get_alert(hub.context.store.engine, _early_warning(hub))
    store_alert(tmp_path, sign_alert(alert, hub.world.hub_key, NOW), hub.context.trust, NOW)
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    shown = runner.invoke(app, ["node", "alerts", "--no-fetch", *home], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert alert.alert_id in shown.stdout and "KHM, LAO" in shown.stdout
    narrow = runner.invoke(app, ["node", "alerts", "--no-fetch", *home], env={"COLUMNS": "60"})
    table = narrow.stdout.split("\n  ", 1)[0]  # the table, before the one-line summaries
    assert alert.alert_id in table  # the id --ack takes is never cut
    unnamed = runner.invoke(app, ["node", "alerts", "--ack", alert.alert_id, *home])
    assert unnamed.exit_code == 2 and "--by" in unnamed.output
