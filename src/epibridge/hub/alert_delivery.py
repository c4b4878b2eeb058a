"""Getting alerts to the countries concerned, and noticing when nobody acknowledged them.

**When.** An alert is delivered once it is ``verified``, or at once when it is an early
warning (a cross-border cluster with p <= 0.01): ``ensure_deliveries`` then gives every
country of the alert's areas (both sides of a border) one row per channel, each with a
``sent`` event. An alert that widens later (a merged signal with a new country) gives the
new country its rows too.

**Channels.** ``node``: the country's node pulls ``GET /v1/alerts/inbox``, which marks
the row delivered (``pull_inbox``). ``webhook`` and ``email`` (``alerts.toml``,
``alert_config.py``): ``deliver_pending`` POSTs the signed document or mails it; success
marks the row delivered, a failure is counted and kept in ``last_error`` and tried again on
the next run. The node or a person of the country acknowledges (``acknowledge``), which
marks every channel of that country.

**Escalation.** ``escalate_overdue`` marks each delivery not acknowledged ``after`` its
sending (24 hours by default) as escalated, once, with an event and a log leaf, and tells
the hub's escalation contact when one is configured.
"""

from __future__ import annotations

import os
import smtplib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

import httpx
from sqlalchemy import Connection, Engine, select, update

from epibridge.hub.alert_config import AlertConfig, Contact, Smtp
from epibridge.hub.alert_store import (
    OPEN,
    Alert,
    AlertError,
    read,
    record,
    sign_alert,
    time_text,
    writing,
)
from epibridge.hub.tables import alert_deliveries_table, alerts_table
from epibridge.transport.keystore import SigningKey

ESCALATE_AFTER = timedelta(hours=24)
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
SYSTEM = "hub"


@dataclass(frozen=True)
class Delivery:
    alert_id: str
    country: str
    channel: str
    sent_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated_at: datetime | None
    attempts: int
    last_error: str | None


def deliveries(
    connection: Connection, alert_id: str | None = None, country: str | None = None
) -> list[Delivery]:
    t = alert_deliveries_table
    query = select(t).order_by(t.c.alert_id, t.c.country, t.c.channel)
    if alert_id is not None:
        query = query.where(t.c.alert_id == alert_id)
    if country is not None:
        query = query.where(t.c.country == country)
    return [
        Delivery(
            r.alert_id,
            r.country,
            r.channel,
            r.sent_at,
            r.delivered_at,
            r.acknowledged_at,
            r.acknowledged_by,
            r.escalated_at,
            int(r.attempts),
            r.last_error,
        )
        for r in connection.execute(query)
    ]


def due(alert: Alert) -> bool:
    """Whether the alert goes out now: verified, or an early warning still open."""
    return alert.status == "verified" or (alert.early_warning and alert.status in OPEN)


def ensure_deliveries(
    connection: Connection, alert: Alert, config: AlertConfig, now: datetime
) -> int:
    """Give each country concerned a row per channel, if the alert is due (rows made)."""
    if not due(alert):
        return 0
    have = {(d.country, d.channel) for d in deliveries(connection, alert.alert_id)}
    why = "verified" if alert.status == "verified" else "early warning"
    made = 0
    for country in alert.countries:
        for channel in config.channels(country):
            if (country, channel) in have:
                continue
            connection.execute(
                alert_deliveries_table.insert().values(
                    alert_id=alert.alert_id,
                    country=country,
                    channel=channel,
                    sent_at=now,
                    attempts=0,
                )
            )
            record(
                connection, alert.alert_id, "sent", SYSTEM, f"{country} by {channel} ({why})", now
            )
            made += 1
    return made


# -- node inbox and acknowledgement ---------------------------------------------------------


def pull_inbox(
    engine: Engine, country: str, actor: str, key: SigningKey, now: datetime
) -> list[tuple[Alert, str]]:
    """Every alert sent to ``country``'s node and not yet acknowledged, signed; those not
    pulled before are marked delivered now."""
    t = alert_deliveries_table
    with writing(engine) as c:
        rows = [
            d
            for d in deliveries(c, country=country)
            if d.channel == "node" and d.acknowledged_at is None
        ]
        found = []
        for d in rows:
            if d.delivered_at is None:
                c.execute(
                    update(t)
                    .where(t.c.alert_id == d.alert_id, t.c.country == country)
                    .where(t.c.channel == "node")
                    .values(delivered_at=now, attempts=t.c.attempts + 1)
                )
                record(c, d.alert_id, "delivered", actor, f"{country} by node (inbox)", now)
            alert = read(c, d.alert_id)
            found.append((alert, sign_alert(alert, key, now)))
    return found


def acknowledge(
    engine: Engine, alert_id: str, country: str, by: str, actor: str, now: datetime
) -> list[Delivery]:
    """``by`` (a person) acknowledges the alert for ``country``: every channel's row."""
    if not by.strip():
        raise AlertError("invalid_request", "an acknowledgement names the person who read it")
    t = alert_deliveries_table
    with writing(engine) as c:
        read(c, alert_id, lock=True)
        mine = deliveries(c, alert_id, country)
        if not mine:
            raise AlertError(
                "not_delivered",
                f"alert {alert_id} was not sent to {country}: nothing to acknowledge",
            )
        if all(d.acknowledged_at is not None for d in mine):
            return mine
        c.execute(
            update(t)
            .where(t.c.alert_id == alert_id, t.c.country == country)
            .where(t.c.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=by.strip())
        )
        record(c, alert_id, "acknowledged", actor, f"{country}: {by.strip()}", now)
        return deliveries(c, alert_id, country)


# -- webhooks and e-mail --------------------------------------------------------------------


def _post(client: httpx.Client, url: str, alert_id: str, body: str | dict[str, object]) -> None:
    headers = {"X-Epibridge-Alert": alert_id}
    if isinstance(body, str):
        answer = client.post(
            url, content=body, headers={**headers, "Content-Type": "application/jose"}
        )
    else:
        answer = client.post(url, json=body, headers=headers)
    if not answer.is_success:
        raise OSError(f"the webhook answered HTTP {answer.status_code}")


def _mail(smtp: Smtp, to: Iterable[str], subject: str, text: str, token: str | None) -> None:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(text)
    if token is not None:
        message.add_attachment(
            token.encode(), maintype="application", subtype="jose", filename="alert.jws"
        )
    with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as server:
        if smtp.starttls:
            server.starttls()
        if smtp.username:
            server.login(smtp.username, os.environ.get(smtp.password_env or "", ""))
        server.send_message(message)


def _summary(alert: Alert) -> str:
    return (
        f"{alert.title}\n\nalert {alert.alert_id}, status {alert.status}\n"
        f"countries: {', '.join(alert.countries)}\nareas: {', '.join(alert.areas)}\n"
        f"weeks: {alert.first_week} to {alert.last_week}\n\n"
        "The attached alert.jws is signed by the hub; acknowledge it with "
        "'epibridge node alerts --ack ID --by NAME'.\n"
    )


@dataclass
class DeliveryReport:
    delivered: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str, str]] = field(default_factory=list)  # ... and why


def deliver_pending(
    engine: Engine,
    config: AlertConfig,
    key: SigningKey,
    now: datetime,
    client: httpx.Client | None = None,
) -> DeliveryReport:
    """Send every webhook and e-mail delivery not yet delivered (failed ones again)."""
    report = DeliveryReport()
    with engine.connect() as c:
        pending = [
            (d, read(c, d.alert_id))
            for d in deliveries(c)
            if d.channel != "node" and d.delivered_at is None
        ]
    if not pending:
        return report
    http = client or httpx.Client(timeout=TIMEOUT)
    try:
        for d, alert in pending:
            contact = config.countries.get(d.country, Contact())
            token = sign_alert(alert, key, now)
            try:
                if d.channel == "webhook" and contact.webhook:
                    _post(http, contact.webhook, alert.alert_id, token)
                elif d.channel == "email" and contact.email and config.smtp is not None:
                    _mail(
                        config.smtp,
                        contact.email,
                        f"[epibridge alert] {alert.title}",
                        _summary(alert),
                        token,
                    )
                else:
                    raise OSError(f"alerts.toml no longer sets a {d.channel} for {d.country}")
            except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
                _attempted(engine, d, None, f"{type(exc).__name__}: {exc}")
                report.failed.append((d.alert_id, d.country, d.channel, str(exc)))
                continue
            _attempted(engine, d, now, None)
            report.delivered.append((d.alert_id, d.country, d.channel))
    finally:
        if client is None:
            http.close()
    return report


def _attempted(engine: Engine, d: Delivery, delivered: datetime | None, error: str | None) -> None:
    t = alert_deliveries_table
    where = (t.c.alert_id == d.alert_id, t.c.country == d.country, t.c.channel == d.channel)
    with writing(engine) as c:
        changed = c.execute(
            update(t)
            .where(*where, t.c.delivered_at.is_(None))
            .values(delivered_at=delivered, attempts=t.c.attempts + 1, last_error=error)
        ).rowcount
        if delivered is not None and changed:
            record(c, d.alert_id, "delivered", SYSTEM, f"{d.country} by {d.channel}", delivered)


# -- escalation -----------------------------------------------------------------------------


@dataclass
class EscalationReport:
    escalated: list[tuple[str, str, str]] = field(default_factory=list)
    notified: int = 0
    problems: list[str] = field(default_factory=list)


def escalate_overdue(
    engine: Engine,
    now: datetime,
    after: timedelta = ESCALATE_AFTER,
    *,
    config: AlertConfig | None = None,
    key: SigningKey | None = None,
    client: httpx.Client | None = None,
) -> EscalationReport:
    """Escalate each delivery of an open alert unacknowledged ``after`` it was sent, once;
    tell the escalation contact of ``config`` (the signed document attached with ``key``)."""
    t, a = alert_deliveries_table, alerts_table
    report = EscalationReport()
    with writing(engine) as c:
        overdue = c.execute(
            select(t.c.alert_id, t.c.country, t.c.channel, t.c.sent_at)
            .join(a, a.c.alert_id == t.c.alert_id)
            .where(t.c.acknowledged_at.is_(None), t.c.escalated_at.is_(None))
            .where(t.c.sent_at <= now - after, a.c.status.in_(sorted(OPEN)))
            .order_by(t.c.alert_id, t.c.country, t.c.channel)
        ).all()
        for alert_id, country, channel, sent_at in overdue:
            c.execute(
                update(t)
                .where(t.c.alert_id == alert_id, t.c.country == country, t.c.channel == channel)
                .values(escalated_at=now)
            )
            record(
                c,
                alert_id,
                "escalated",
                SYSTEM,
                f"{country} by {channel}: not acknowledged since {time_text(sent_at)}",
                now,
            )
            report.escalated.append((alert_id, country, channel))
    if config is not None and report.escalated:
        _notify(engine, config, key, now, client, report)
    return report


def _notify(
    engine: Engine,
    config: AlertConfig,
    key: SigningKey | None,
    now: datetime,
    client: httpx.Client | None,
    report: EscalationReport,
) -> None:
    contact = config.escalation
    if not contact.webhook and not contact.email:
        return
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for alert_id, country, channel in report.escalated:
        grouped[(alert_id, country)].append(channel)
    http = client or httpx.Client(timeout=TIMEOUT)
    try:
        for (alert_id, country), channels in sorted(grouped.items()):
            alert = _alert(engine, alert_id)
            token = sign_alert(alert, key, now) if key is not None else None
            body: dict[str, object] = {
                "event": "escalated",
                "alert_id": alert_id,
                "country": country,
                "channels": channels,
                "title": alert.title,
                "document": token,
            }
            text = (
                f"{country} has not acknowledged alert {alert_id} "
                f"({', '.join(channels)}).\n\n" + _summary(alert)
            )
            try:
                if contact.webhook:
                    _post(http, contact.webhook, alert_id, body)
                if contact.email and config.smtp is not None:
                    _mail(
                        config.smtp,
                        contact.email,
                        f"[epibridge escalation] {country}: {alert.title}",
                        text,
                        token,
                    )
                report.notified += 1
            except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
                report.problems.append(f"escalation of {alert_id} ({country}): {exc}")
    finally:
        if client is None:
            http.close()


def _alert(engine: Engine, alert_id: str) -> Alert:
    with engine.connect() as c:
        return read(c, alert_id)
