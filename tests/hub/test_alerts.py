"""Alerts at the hub: raised and merged from signals, reviewed, signed, delivered to every
country concerned, acknowledged or escalated, and checked by the audit. SQLite and
PostgreSQL (the ``hub`` fixture's ``url``)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner, Result

from epibridge.cli import app
from epibridge.hub.alert_config import load_config
from epibridge.hub.alert_delivery import (
    acknowledge,
    deliver_pending,
    deliveries,
    escalate_overdue,
    pull_inbox,
)
from epibridge.hub.alert_signals import Signal, cluster_signals, near, temporal_signals
from epibridge.hub.alert_store import ALERT_TYPE, AlertError, events, get_alert, list_alerts
from epibridge.hub.alerts import comment, raise_alerts, set_owner, set_status
from epibridge.hub.app import create_app
from epibridge.hub.audit import audit_verify
from epibridge.hub.regional import COUNTS_AS_OF
from epibridge.hub.signals import regional_scan
from epibridge.hub.tables import log_entries_table
from epibridge.hub.temporal import DETECTION
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.transport.keys import verify_compact
from tests.hub import test_access, test_intake
from tests.hub.test_app import Clock, _token
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send
from tests.hub.test_signals import _border_region, _cell
from tests.hub.test_temporal import _seasonal

hub = test_intake.hub
world = test_intake.world
url = test_intake.url
tokens = test_access.tokens

W0 = date(2026, 3, 2)  # a Monday
WEEK = timedelta(weeks=1)
DAY = timedelta(days=1)


def _temporal(area: str, country: str, week: date, disease: str = "DENGUE", **kw: Any) -> Signal:
    return Signal(
        "temporal",
        disease,
        kw.pop("method", "noufaily"),
        (area,),
        (country,),
        week,
        week,
        observed=12.0,
        expected=3.5,
        p_value=kw.pop("p", 0.002),
        **kw,
    )


def _cluster(
    areas: tuple[str, ...], countries: tuple[str, ...], p: float, first: date = W0
) -> Signal:
    return Signal(
        "cluster",
        "DENGUE",
        "space-time permutation scan",
        areas,
        countries,
        first,
        first + WEEK,
        p_value=p,
        observed=40.0,
        expected=9.0,
    )


def _leaves(engine: Engine) -> int:
    with engine.connect() as c:
        return int(
            c.execute(select(func.count()).where(log_entries_table.c.kind == "alert")).scalar_one()
        )


def _events(engine: Engine, alert_id: str) -> list[str]:
    with engine.connect() as c:
        return [e.kind for e in events(c, alert_id)]


def _deliveries(engine: Engine, alert_id: str) -> list[Any]:
    with engine.connect() as c:
        return deliveries(c, alert_id)


# -- signals ----------------------------------------------------------------------------


def test_a_planted_cross_border_cluster_becomes_a_signal() -> None:
    codes, country, pair = _border_region()
    rng = np.random.default_rng(7)
    rows = [
        _cell(
            code,
            week,
            int(rng.poisson(4)) + (30 if code in pair and week >= 18 else 0),
            country[code],
        )
        for code in codes
        for week in range(20)
    ]
    scan = regional_scan(
        pa.Table.from_pylist(rows, COUNTS_AS_OF), "DENGUE", np.random.default_rng(1), weeks=20
    )
    found = cluster_signals(scan, "DENGUE")
    assert found and all(s.p_value is not None and s.p_value <= 0.05 for s in found)
    top = found[0]
    assert set(pair) <= set(top.areas) and top.cross_border and top.early_warning
    assert top.last_week == scan.weeks[-1] and top.countries == ("KHM", "THA")
    assert cluster_signals(scan, "DENGUE", threshold=1e-9) == []


def test_temporal_alarm_rows_become_signals() -> None:
    def row(area: str, week: date, alarm: bool | None) -> dict[str, Any]:
        return {
            "country": "KHM",
            "area": area,
            "disease": "DENGUE",
            "week_start": week,
            "period": "",
            "observed": 9,
            "expected": 2.0,
            "upperbound": 6.5,
            "alarm": alarm,
            "pvalue": None,
        }

    points = pa.Table.from_pylist(
        [row("KH-13", W0, True), row("KH-13", W0 + WEEK, False), row("KH-1", W0, None)],
        DETECTION,
    )
    (only,) = temporal_signals(points, "noufaily")
    assert (only.areas, only.first_week, only.observed) == (("KH-13",), W0, 9.0)
    assert only.summary()["upperbound"] == 6.5 and only.p_value is None
    with pytest.raises(ValueError, match="alarm"):
        temporal_signals(points.drop_columns(["alarm"]), "noufaily")


# -- raising, merging, lifecycle --------------------------------------------------------


def test_merge_rule_and_idempotency(hub: Hub) -> None:
    engine = hub.context.store.engine
    assert near(["KH-13"], ["LA-CH"]) and not near(["KH-1"], ["KH-13", "LA-CH"])
    signals = [
        _temporal("KH-13", "KHM", W0),
        _temporal("LA-CH", "LAO", W0 + WEEK),  # borders KH-13, the next week: merged
        _temporal("KH-13", "KHM", W0 + 3 * WEEK),  # two weeks after the alert: a new one
        _temporal("KH-1", "KHM", W0),  # not near: a new one
        _temporal("KH-13", "KHM", W0, disease="MALARIA"),  # another disease: a new one
    ]
    report = raise_alerts(engine, signals, NOW)
    assert len(report.created) == 4 and len(report.merged) == 1 and report.known == 0
    merged = get_alert(engine, report.merged[0][0])
    assert merged.areas == ("KH-13", "LA-CH") and merged.countries == ("KHM", "LAO")
    assert merged.cross_border and (merged.first_week, merged.last_week) == (W0, W0 + WEEK)
    assert len(merged.detail["signals"]) == 2 and merged.detail["observed"] == 24.0
    assert _events(engine, merged.alert_id) == ["created", "signal_merged"]
    leaves = _leaves(engine)
    assert leaves == 5  # four created, one merged
    # The same signals again change nothing: no alert, no event, no leaf.
    again = raise_alerts(engine, list(reversed(signals)), NOW + DAY)
    assert (again.created, again.merged, again.known) == ([], [], 5)
    assert len(list_alerts(engine)) == 4 and _leaves(engine) == leaves
    # A discarded alert takes no more signals: a new finding there opens a new alert.
    set_status(engine, merged.alert_id, "under_review", "analyst", NOW)
    set_status(engine, merged.alert_id, "discarded", "analyst", NOW, "reporting artefact")
    late = raise_alerts(engine, [_temporal("KH-13", "KHM", W0, method="ears-c1")], NOW)
    assert len(late.created) == 1 and late.created[0] != merged.alert_id


def test_lifecycle_and_invalid_transitions(hub: Hub) -> None:
    engine = hub.context.store.engine
    (first,) = raise_alerts(engine, [_temporal("KH-1", "KHM", W0)], NOW).created
    with pytest.raises(AlertError) as err:
        set_status(engine, first, "verified", "analyst", NOW)
    assert err.value.reason == "invalid_transition"
    assert "from new to verified" in err.value.message
    assert "it can go to under_review" in err.value.message
    set_owner(engine, first, "Dr. Chan", "analyst", NOW)
    comment(engine, first, "asked the province for line lists", "analyst", NOW + DAY)
    set_status(engine, first, "under_review", "analyst", NOW + DAY)
    set_status(engine, first, "verified", "analyst", NOW + 2 * DAY, "confirmed by lab")
    with pytest.raises(AlertError, match=r"from verified to discarded.*can go to closed"):
        set_status(engine, first, "discarded", "analyst", NOW)
    closed = set_status(engine, first, "closed", "analyst", NOW + 3 * DAY)
    assert closed.status == "closed" and closed.owner == "Dr. Chan"
    with pytest.raises(AlertError, match="closed is final"):
        set_status(engine, first, "under_review", "analyst", NOW)
    with pytest.raises(AlertError, match="not a status"):
        set_status(engine, first, "archived", "analyst", NOW)
    with pytest.raises(AlertError) as unknown:
        set_status(engine, "no-such", "closed", "analyst", NOW)
    assert unknown.value.reason == "unknown_alert"
    kinds = _events(engine, first)
    assert kinds[:5] == ["created", "owner_set", "comment", "status_changed", "status_changed"]
    assert kinds[-1] == "status_changed" and "sent" in kinds  # verified: sent to KHM
    assert _leaves(engine) == len(kinds)  # every event is a leaf


# -- delivery ---------------------------------------------------------------------------


def test_a_cross_border_cluster_reaches_both_countries(hub: Hub) -> None:
    engine = hub.context.store.engine
    early = raise_alerts(engine, [_cluster(("KH-13", "LA-CH"), ("KHM", "LAO"), 0.004)], NOW)
    (warning,) = early.created
    assert get_alert(engine, warning).early_warning and early.sent == 2
    sent = {(d.country, d.channel) for d in _deliveries(engine, warning)}
    assert sent == {("KHM", "node"), ("LAO", "node")}
    # A weaker cluster is sent only once verified; then to both countries too.
    (later,) = raise_alerts(
        engine, [_cluster(("KH-16", "LA-AT"), ("KHM", "LAO"), 0.03, W0 + 6 * WEEK)], NOW
    ).created
    assert _deliveries(engine, later) == []
    set_status(engine, later, "under_review", "analyst", NOW)
    assert _deliveries(engine, later) == []
    set_status(engine, later, "verified", "analyst", NOW + DAY)
    assert {d.country for d in _deliveries(engine, later)} == {"KHM", "LAO"}
    # Each node finds it in its inbox, signed by the hub.
    key = hub.world.hub_key
    for country in ("KHM", "LAO"):
        found = pull_inbox(engine, country, country, key, NOW + 2 * DAY)
        assert {a.alert_id for a, _ in found} == {warning, later}
        for alert, token in found:
            claims = verify_compact(token, key.private_key.public_key(), ALERT_TYPE)
            assert claims["alert"] == alert.state()
    assert all(d.delivered_at == NOW + 2 * DAY for d in _deliveries(engine, later))


def test_acknowledged_or_escalated_once(hub: Hub) -> None:
    engine = hub.context.store.engine
    (alert_id,) = raise_alerts(
        engine, [_cluster(("KH-13", "LA-CH"), ("KHM", "LAO"), 0.001)], NOW
    ).created
    with pytest.raises(AlertError, match="names the person"):
        acknowledge(engine, alert_id, "KHM", " ", "KHM", NOW)
    with pytest.raises(AlertError) as err:
        acknowledge(engine, alert_id, "THA", "Dr. Somchai", "THA", NOW)
    assert err.value.reason == "not_delivered"
    done = acknowledge(engine, alert_id, "KHM", "Dr. Sok", "KHM", NOW + DAY / 2)
    assert [(d.acknowledged_by, d.acknowledged_at) for d in done] == [("Dr. Sok", NOW + DAY / 2)]
    assert escalate_overdue(engine, NOW + DAY / 2).escalated == []  # not overdue yet
    first = escalate_overdue(engine, NOW + 25 * 3600 * timedelta(seconds=1))
    assert first.escalated == [(alert_id, "LAO", "node")]
    assert escalate_overdue(engine, NOW + 3 * DAY).escalated == []  # once only
    kinds = _events(engine, alert_id)
    assert kinds.count("escalated") == 1 and kinds.count("acknowledged") == 1
    (lao,) = [d for d in _deliveries(engine, alert_id) if d.country == "LAO"]
    assert lao.escalated_at is not None and lao.acknowledged_at is None


class _Hook(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), body))
        self.send_response(type(self).answers.pop(0) if type(self).answers else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(  # noqa: N802 (aiosmtpd's handler API)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.answers, _Hook.received = [], []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def mailbox() -> Iterator[tuple[_Mailbox, int]]:
    box, port = _Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def test_webhook_and_email_delivery_with_retry_and_escalation(
    hub: Hub, tmp_path: Path, hook: str, mailbox: tuple[_Mailbox, int]
) -> None:
    box, port = mailbox
    (tmp_path / "alerts.toml").write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nfrom = "hub@example.org"\n\n'
        f'[countries.KHM]\nwebhook = "{hook}/khm"\n\n'
        '[countries.LAO]\nemail = ["ihr@example.la"]\n\n'
        f'[escalation]\nwebhook = "{hook}/duty"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path)
    engine, key = hub.context.store.engine, hub.world.hub_key
    (alert_id,) = raise_alerts(
        engine, [_cluster(("KH-13", "LA-CH"), ("KHM", "LAO"), 0.002)], NOW, config=config
    ).created
    assert {(d.country, d.channel) for d in _deliveries(engine, alert_id)} == {
        ("KHM", "node"),
        ("KHM", "webhook"),
        ("LAO", "node"),
        ("LAO", "email"),
    }
    _Hook.answers = [503]  # the webhook is down the first time
    first = deliver_pending(engine, config, key, NOW)
    assert first.delivered == [(alert_id, "LAO", "email")]
    assert [f[:3] for f in first.failed] == [(alert_id, "KHM", "webhook")]
    (hooked,) = [d for d in _deliveries(engine, alert_id) if d.channel == "webhook"]
    assert hooked.delivered_at is None and hooked.attempts == 1 and "503" in str(hooked.last_error)
    second = deliver_pending(engine, config, key, NOW + DAY / 4)
    assert second.delivered == [(alert_id, "KHM", "webhook")] and second.failed == []
    assert deliver_pending(engine, config, key, NOW + DAY / 2).delivered == []
    public = key.private_key.public_key()
    path, headers, body = _Hook.received[-1]
    assert path == "/khm" and headers["Content-Type"] == "application/jose"
    assert verify_compact(body.decode(), public, ALERT_TYPE)["alert"]["alert_id"] == alert_id
    (mail,) = box.messages
    assert mail.rcpt_tos == ["ihr@example.la"]
    parsed = message_from_bytes(mail.original_content or b"")
    assert "[epibridge alert]" in str(parsed["Subject"])
    (attached,) = [p for p in parsed.walk() if p.get_filename() == "alert.jws"]
    token = bytes(attached.get_payload(decode=True)).decode()
    assert verify_compact(token, public, ALERT_TYPE)["alert"]["countries"] == ["KHM", "LAO"]
    # Nobody acknowledged: each delivery is escalated once, the duty officer told.
    acknowledge(engine, alert_id, "LAO", "Dr. Phet", "LAO", NOW + DAY / 2)
    report = escalate_overdue(engine, NOW + 2 * DAY, config=config, key=key)
    assert report.escalated == [(alert_id, "KHM", "node"), (alert_id, "KHM", "webhook")]
    assert report.notified == 1 and report.problems == []
    path, _, body = _Hook.received[-1]
    told = json.loads(body)
    assert path == "/duty" and told["country"] == "KHM" and told["channels"] == ["node", "webhook"]
    assert escalate_overdue(engine, NOW + 4 * DAY, config=config, key=key).escalated == []


# -- audit ------------------------------------------------------------------------------


def test_audit_verify_catches_an_edited_alert(hub: Hub) -> None:
    engine = hub.context.store.engine
    (alert_id,) = raise_alerts(engine, [_temporal("KH-1", "KHM", W0)], NOW).created
    set_status(engine, alert_id, "under_review", "analyst", NOW)
    report = audit_verify(engine, hub.context.trust, progress=lambda _: None)
    assert report.problems == [] and report.alerts == 1 and report.alert_events == 2
    with engine.begin() as c:
        c.execute(
            text("UPDATE alerts SET status = 'discarded' WHERE alert_id = :a"), {"a": alert_id}
        )
    problems = audit_verify(engine, hub.context.trust, progress=lambda _: None).problems
    assert len(problems) == 1 and alert_id in problems[0] and "changed outside" in problems[0]
    with engine.begin() as c:
        c.execute(
            text("UPDATE alerts SET status = 'under_review' WHERE alert_id = :a"), {"a": alert_id}
        )
        c.execute(text("UPDATE alert_events SET actor = 'someone' WHERE event_no = 2"))
    problems = audit_verify(engine, hub.context.trust, progress=lambda _: None).problems
    assert len(problems) == 1 and "actor" in problems[0]


# -- API --------------------------------------------------------------------------------


def test_alert_api_authorization(hub: Hub, tokens: dict[str, str]) -> None:
    engine = hub.context.store.engine
    (alert_id,) = raise_alerts(engine, [_temporal("KH-1", "KHM", W0)], NOW).created
    client = TestClient(create_app(hub.context, Clock(NOW)))
    tokens = {**tokens, "node": _token(client, hub.world.khm_key, "KHM")}

    def call(who: str, method: str, path: str, **body: Any) -> tuple[int, dict[str, Any]]:
        answer = client.request(
            method,
            path,
            headers={"Authorization": f"Bearer {tokens[who]}"},
            json=body or None,
        )
        return answer.status_code, answer.json()

    path = f"/v1/alerts/{alert_id}"
    seen = {who: call(who, "GET", path) for who in tokens}
    assert {w for w, (s, _) in seen.items() if s == 200} == {
        "hub_admin",
        "hub_analyst",
        "khm_data_manager",
        "khm_epidemiologist",
        "node",
    }
    assert seen["lao_data_manager"][1]["reason"] == "not_your_country"
    assert seen["observer"][1]["reason"] == "not_verified"
    assert call("lao_data_manager", "GET", "/v1/alerts")[1]["alerts"] == []
    assert call("observer", "GET", "/v1/alerts")[1]["alerts"] == []
    # Only the hub's roles review.
    status, body = call("khm_data_manager", "POST", f"{path}/status", status="under_review")
    assert status == 403 and body["reason"] == "role_not_allowed"
    status, body = call("hub_analyst", "POST", f"{path}/status", status="verified")
    assert status == 409 and body["reason"] == "invalid_transition"
    assert call("hub_analyst", "POST", f"{path}/status", status="under_review")[0] == 200
    assert call("hub_analyst", "POST", f"{path}/owner", owner="Dr. Chan")[0] == 200
    assert call("hub_admin", "POST", f"{path}/comments", text="lab samples sent")[0] == 200
    status, body = call("hub_analyst", "POST", f"{path}/status", status="verified")
    assert status == 200 and body["alert"]["status"] == "verified"
    assert [d["country"] for d in body["deliveries"]] == ["KHM"]
    assert call("observer", "GET", path)[0] == 200
    assert [a["alert_id"] for a in call("observer", "GET", "/v1/alerts")[1]["alerts"]] == [alert_id]
    # The node pulls its inbox and acknowledges; others cannot.
    status, inbox = call("node", "GET", "/v1/alerts/inbox")
    assert status == 200 and [a["alert_id"] for a in inbox["alerts"]] == [alert_id]
    assert call("observer", "GET", "/v1/alerts/inbox")[1]["reason"] == "role_not_allowed"
    assert call("hub_admin", "POST", f"{path}/ack", by="x")[1]["reason"] == "role_not_allowed"
    assert call("lao_data_manager", "POST", f"{path}/ack", by="x")[1]["reason"] == (
        "not_your_country"
    )
    status, body = call("node", "POST", f"{path}/ack", by="Dr. Sok")
    assert status == 200 and body["deliveries"][0]["acknowledged_by"] == "Dr. Sok"
    assert call("hub_admin", "GET", "/v1/alerts/no-such")[0] == 404
    assert client.get(path).status_code == 401
    log = call("hub_admin", "GET", "/v1/access-log")[1]["entries"]
    assert any(e["reason"] == "not_verified" and e["principal"] == "observer" for e in log)


# -- command line -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_hub_alerts_on_the_command_line(hub: Hub, tmp_path: Path, url: str) -> None:
    _send(hub, tmp_path, A, pa.Table.from_pylist(_seasonal(), RELEASE_COUNTS), at_hours=0)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(
            app, ["hub", "alerts", *args, "--home", str(home)], env={"COLUMNS": "200"}
        )

    at = (NOW + timedelta(hours=1)).isoformat()
    done = run("raise", "--disease", "DENGUE", "--as-of", at, "--scan-weeks", "8")
    assert done.exit_code == 0, done.output
    engine = hub.context.store.engine
    raised = list_alerts(engine)
    assert raised and "new alerts" in done.stdout
    assert {a for alert in raised for a in alert.areas} >= {"KH-1"}
    again = run("raise", "--disease", "DENGUE", "--as-of", at, "--scan-weeks", "8")
    assert "0 new alerts, 0 merged" in again.stdout and len(list_alerts(engine)) == len(raised)
    first = raised[0].alert_id
    assert first in run("list").stdout
    refused = run("status", first, "verified")
    assert isinstance(refused.exception, AlertError)  # cli.main prints it, exit status 2
    assert "from new to verified" in refused.exception.message
    assert run("status", first, "under_review", "--by", "Dr. Chan").exit_code == 0
    assert run("owner", first, "Dr. Chan").exit_code == 0
    assert run("comment", first, "province asked for line lists").exit_code == 0
    assert run("status", first, "verified", "--note", "lab confirmed").exit_code == 0
    shown = run("show", first)
    assert "province asked for line lists" in shown.stdout and "KHM by node" in shown.stdout
    # figures rounded for reading: "expected 12.3", not "expected 12.345678901234"
    assert re.search(r"expected [\d,]+\.\d(;|\s|$)", shown.stdout), shown.stdout
    assert "verified" in run("list", "--status", "verified").stdout
    # a status that does not exist is refused with the ones that do; none held is said so
    wrong = run("list", "--status", "open")
    assert wrong.exit_code == 2 and "'open' is not one of" in wrong.output
    assert "'under_review'" in wrong.output
    assert "no alerts with status discarded" in run("list", "--status", "discarded").stdout
    # ids are never cut, however narrow the terminal (they are what the next command takes)
    narrow = runner.invoke(
        app, ["hub", "alerts", "list", "--home", str(home)], env={"COLUMNS": "60"}
    )
    assert first in narrow.stdout
    assert "0 deliveries escalated" in run("escalate").stdout
    assert get_alert(engine, first).owner == "Dr. Chan"
