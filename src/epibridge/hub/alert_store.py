"""Alerts in the hub database: reading them, recording each change, signing their state.

An alert's **state** is its row as a JSON object (``Alert.state``): the same dict is the
payload of its signed document and, hashed as canonical JSON (RFC 8785), the
``state_sha256`` every log leaf of the alert carries.

``record`` is the one way a change is written: an ``alert_events`` row numbered per alert
from 1 and, in the same transaction, a transparency-log leaf of kind ``"alert"`` (subject
``<alert_id>/<event_no>``) holding the event and the digest of the state after it. So
``epibridge audit verify`` can recompute both from the store (``audit.py``): an alert row
edited in the database no longer hashes to its last leaf.

``sign_alert`` signs the state as a compact JWS (``typ`` ``epibridge-alert+jws``) with the
hub's signing key, as receipts are signed; a node verifies it against its trust list
(``node/alerts.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Engine, func, select, text

from epibridge.hub.log import _APPEND_LOCK, append, canonical
from epibridge.hub.tables import alert_events_table, alerts_table, utc
from epibridge.model.errors import ReasonedError
from epibridge.transport.keys import sign_compact
from epibridge.transport.keystore import SigningKey

ALERT_TYPE = "epibridge-alert+jws"
LOG_KIND = "alert"
#: Statuses a signal can still be merged into (and deliveries still matter for).
OPEN: frozenset[str] = frozenset({"new", "under_review", "verified"})
EventKind = Literal[
    "created",
    "signal_merged",
    "status_changed",
    "owner_set",
    "comment",
    "sent",
    "delivered",
    "acknowledged",
    "escalated",
    "ihr_signed",  # a national focal point signed the IHR Annex 2 worksheet (hub/ihr.py)
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)


class AlertError(ReasonedError):
    """A request about an alert that cannot be done: ``reason`` says which kind."""


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that changes alerts. Every change appends to the log, whose appends
    take turns on one PostgreSQL advisory lock: taking it first, before any row, means two
    such transactions never hold one lock each while waiting for the other's."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
        yield connection


def time_text(at: datetime) -> str:
    return utc(at, "an alert time").isoformat()


@dataclass(frozen=True)
class Alert:
    alert_id: str
    disease: str
    kind: str
    status: str
    owner: str | None
    title: str
    countries: tuple[str, ...]
    areas: tuple[str, ...]
    first_week: date
    last_week: date
    created_at: datetime
    updated_at: datetime
    cross_border: bool
    detail: dict[str, Any]

    @property
    def early_warning(self) -> bool:
        return bool(self.detail.get("early_warning"))

    @property
    def signal_keys(self) -> frozenset[str]:
        return frozenset(str(s["key"]) for s in self.detail.get("signals", []))

    def state(self) -> dict[str, Any]:
        """The alert as a JSON object: what is signed and what the log's digests cover."""
        return {
            "alert_id": self.alert_id,
            "disease": self.disease,
            "kind": self.kind,
            "status": self.status,
            "owner": self.owner,
            "title": self.title,
            "countries": list(self.countries),
            "areas": list(self.areas),
            "first_week": self.first_week.isoformat(),
            "last_week": self.last_week.isoformat(),
            "created_at": time_text(self.created_at),
            "updated_at": time_text(self.updated_at),
            "cross_border": self.cross_border,
            "detail": self.detail,
        }

    def state_sha256(self) -> str:
        return hashlib.sha256(canonical(self.state())).hexdigest()

    def row(self) -> dict[str, Any]:
        """The ``alerts`` row's values."""
        return {
            "alert_id": self.alert_id,
            "disease": self.disease,
            "kind": self.kind,
            "status": self.status,
            "owner": self.owner,
            "title": self.title,
            "countries": json.dumps(list(self.countries)),
            "areas": json.dumps(list(self.areas)),
            "first_week": self.first_week,
            "last_week": self.last_week,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "cross_border": self.cross_border,
            "detail": canonical(self.detail).decode(),
        }


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        disease=row.disease,
        kind=row.kind,
        status=row.status,
        owner=row.owner,
        title=row.title,
        countries=tuple(json.loads(row.countries)),
        areas=tuple(json.loads(row.areas)),
        first_week=row.first_week,
        last_week=row.last_week,
        created_at=row.created_at,
        updated_at=row.updated_at,
        cross_border=bool(row.cross_border),
        detail=json.loads(row.detail),
    )


def read(connection: Connection, alert_id: str, *, lock: bool = False) -> Alert:
    """One alert (locked for update on PostgreSQL with ``lock``); ``unknown_alert`` if none."""
    query = select(alerts_table).where(alerts_table.c.alert_id == alert_id)
    if lock:
        query = query.with_for_update()
    row = connection.execute(query).first()
    if row is None:
        raise AlertError("unknown_alert", f"the hub holds no alert {alert_id!r}")
    return _alert(row)


def alerts(
    connection: Connection,
    *,
    disease: str | None = None,
    statuses: frozenset[str] | None = None,
) -> list[Alert]:
    """Alerts, oldest first (optionally of one disease, in some statuses)."""
    t = alerts_table
    query = select(t).order_by(t.c.created_at, t.c.alert_id)
    if disease is not None:
        query = query.where(t.c.disease == disease)
    if statuses is not None:
        query = query.where(t.c.status.in_(sorted(statuses)))
    return [_alert(r) for r in connection.execute(query)]


def get_alert(engine: Engine, alert_id: str) -> Alert:
    with engine.connect() as c:
        return read(c, alert_id)


def list_alerts(
    engine: Engine, *, disease: str | None = None, statuses: frozenset[str] | None = None
) -> list[Alert]:
    with engine.connect() as c:
        return alerts(c, disease=disease, statuses=statuses)


@dataclass(frozen=True)
class Event:
    alert_id: str
    event_no: int
    kind: str
    actor: str
    at: datetime
    text: str

    def entry(self, state_sha256: str) -> dict[str, Any]:
        """The event's log leaf (without ``kind``, which ``log.append`` adds)."""
        return {
            "alert_id": self.alert_id,
            "event_no": self.event_no,
            "event": self.kind,
            "actor": self.actor,
            "at": time_text(self.at),
            "text": self.text,
            "state_sha256": state_sha256,
        }


def events(connection: Connection, alert_id: str | None = None) -> list[Event]:
    """An alert's events (or every alert's), in order."""
    t = alert_events_table
    query = select(t).order_by(t.c.alert_id, t.c.event_no)
    if alert_id is not None:
        query = query.where(t.c.alert_id == alert_id)
    return [
        Event(r.alert_id, r.event_no, r.kind, r.actor, r.at, r.text)
        for r in connection.execute(query)
    ]


def record(
    connection: Connection, alert_id: str, kind: EventKind, actor: str, text: str, at: datetime
) -> Event:
    """Write one change: its event row, then its log leaf (call after the row changed)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown alert event {kind!r}")
    t = alert_events_table
    last = connection.execute(
        select(func.coalesce(func.max(t.c.event_no), 0)).where(t.c.alert_id == alert_id)
    ).scalar_one()
    event = Event(alert_id, int(last) + 1, kind, actor, utc(at, "the event time"), text)
    connection.execute(
        t.insert().values(
            alert_id=alert_id,
            event_no=event.event_no,
            kind=kind,
            actor=actor,
            at=event.at,
            text=text,
        )
    )
    digest = read(connection, alert_id).state_sha256()
    append(connection, LOG_KIND, f"{alert_id}/{event.event_no}", event.entry(digest), at)
    return event


def sign_alert(alert: Alert, key: SigningKey, now: datetime) -> str:
    """The alert's signed document: its state, when it was signed, by which hub key."""
    payload = {"alert": alert.state(), "issued_at": time_text(now), "hub_kid": key.kid}
    return sign_compact(payload, key.private_key, key.kid, ALERT_TYPE)
