"""Alerts at the hub: raised from detection signals, reviewed by people, sent to countries.

**Raising** (``raise_alerts``). Each signal (``alert_signals.py``) is taken in order of
its weeks. A signal already kept in an alert (same ``key``) is skipped, so running the
same detection twice changes nothing. A signal that ``touches`` an open alert (status
new, under review or verified: same disease, an area shared or bordering, weeks overlapping
or within one week) is merged into the oldest such alert, which widens to its areas,
countries and weeks (event ``signal_merged``). Otherwise it opens a new alert (``created``,
status ``new``).

**Lifecycle.** ::

    new --> under_review --+--> verified --+--> closed
                           +--> discarded -+

Any other move raises ``AlertError("invalid_transition")`` naming both states and the
moves allowed from the current one. Owner and comments can change in any state.

Every change is an ``alert_events`` row and a transparency-log leaf, written in the same
transaction as the change (``alert_store.record``). Deliveries start when the alert is
verified, or at once for an early warning (``alert_delivery.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, update

from epibridge.hub.alert_config import AlertConfig
from epibridge.hub.alert_delivery import ensure_deliveries
from epibridge.hub.alert_signals import MERGE_GAP, Signal, touches
from epibridge.hub.alert_status import STATUSES
from epibridge.hub.alert_store import (
    OPEN,
    Alert,
    AlertError,
    alerts,
    read,
    record,
    writing,
)
from epibridge.hub.tables import alerts_table

#: The moves of the lifecycle: from each status, where it may go.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("under_review",),
    "under_review": ("verified", "discarded"),
    "verified": ("closed",),
    "discarded": ("closed",),
    "closed": (),
}
DETECTION = "detection"


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def title_of(
    kind: str, disease: str, areas: Sequence[str], countries: Sequence[str], first: date, last: date
) -> str:
    what = "space-time cluster" if kind == "cluster" else "temporal alarm"
    shown = ", ".join(areas[:4]) + (f" and {len(areas) - 4} more" if len(areas) > 4 else "")
    weeks = _week(first) if first == last else f"{_week(first)} to {_week(last)}"
    border = ", cross-border" if len(countries) > 1 else ""
    return f"{disease}: {what} in {shown} ({', '.join(countries)}{border}), {weeks}"


def _detail(signals: list[dict[str, Any]]) -> dict[str, Any]:
    """The alert's figures from its signals: the strongest p-value, summed counts."""
    ps = [s["p_value"] for s in signals if s.get("p_value") is not None]
    observed = [s["observed"] for s in signals if s.get("observed") is not None]
    expected = [s["expected"] for s in signals if s.get("expected") is not None]
    return {
        "signals": signals,
        "methods": sorted({str(s["method"]) for s in signals}),
        "min_p_value": min(ps) if ps else None,
        "observed": sum(observed) if observed else None,
        "expected": sum(expected) if expected else None,
        "early_warning": any(s.get("early_warning") for s in signals),
    }


def _summary(signal: Signal) -> dict[str, Any]:
    return {**signal.summary(), "early_warning": signal.early_warning}


def _new_alert(signal: Signal, now: datetime) -> Alert:
    return Alert(
        alert_id=f"{signal.disease}-{_week(signal.first_week)}-{signal.key[:10]}",
        disease=signal.disease,
        kind=signal.kind,
        status="new",
        owner=None,
        title=title_of(
            signal.kind,
            signal.disease,
            signal.areas,
            signal.countries,
            signal.first_week,
            signal.last_week,
        ),
        countries=signal.countries,
        areas=signal.areas,
        first_week=signal.first_week,
        last_week=signal.last_week,
        created_at=now,
        updated_at=now,
        cross_border=signal.cross_border,
        detail=_detail([_summary(signal)]),
    )


def _merged(alert: Alert, signal: Signal, now: datetime) -> Alert:
    areas = tuple(sorted(set(alert.areas) | set(signal.areas)))
    countries = tuple(sorted(set(alert.countries) | set(signal.countries)))
    first = min(alert.first_week, signal.first_week)
    last = max(alert.last_week, signal.last_week)
    return replace(
        alert,
        areas=areas,
        countries=countries,
        first_week=first,
        last_week=last,
        cross_border=len(countries) > 1,
        title=title_of(alert.kind, alert.disease, areas, countries, first, last),
        updated_at=now,
        detail=_detail([*alert.detail["signals"], _summary(signal)]),
    )


@dataclass
class RaiseReport:
    created: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (alert, signal key)
    known: int = 0  # signals already kept in an alert
    sent: int = 0  # delivery rows made


def _write(connection: Connection, alert: Alert) -> None:
    values = alert.row()
    alert_id = values.pop("alert_id")
    connection.execute(
        update(alerts_table).where(alerts_table.c.alert_id == alert_id).values(**values)
    )


def raise_alerts(
    engine: Engine,
    signals: Iterable[Signal],
    now: datetime,
    *,
    config: AlertConfig | None = None,
    actor: str = DETECTION,
) -> RaiseReport:
    """Merge each signal into the open alert it touches, or open a new one (one transaction)."""
    config = config or AlertConfig()
    report = RaiseReport()
    ordered = sorted(signals, key=lambda s: (s.first_week, s.last_week, s.key))
    with writing(engine) as c:
        diseases = {s.disease for s in ordered}
        held = [a for d in sorted(diseases) for a in alerts(c, disease=d)]
        known = {k for a in held for k in a.signal_keys}
        open_alerts = [a for a in held if a.status in OPEN]
        for signal in ordered:
            if signal.key in known:
                report.known += 1
                continue
            known.add(signal.key)
            target = next(
                (
                    a
                    for a in open_alerts
                    if touches(signal, a.disease, a.areas, a.first_week, a.last_week, MERGE_GAP)
                ),
                None,
            )
            if target is None:
                alert = _new_alert(signal, now)
                c.execute(insert(alerts_table).values(**alert.row()))
                record(c, alert.alert_id, "created", actor, _said(signal), now)
                open_alerts.append(alert)
                report.created.append(alert.alert_id)
            else:
                alert = _merged(target, signal, now)
                _write(c, alert)
                record(c, alert.alert_id, "signal_merged", actor, _said(signal), now)
                open_alerts[open_alerts.index(target)] = alert
                report.merged.append((alert.alert_id, signal.key))
            report.sent += ensure_deliveries(c, alert, config, now)
    return report


def _said(signal: Signal) -> str:
    p = "" if signal.p_value is None else f", p={signal.p_value:.3g}"
    weeks = f"{_week(signal.first_week)}..{_week(signal.last_week)}"
    early = ", early warning" if signal.early_warning else ""
    return (
        f"{signal.kind} signal {signal.key[:12]} ({signal.method}): "
        f"{', '.join(signal.areas)} {weeks}{p}{early}"
    )


def set_status(
    engine: Engine,
    alert_id: str,
    status: str,
    actor: str,
    now: datetime,
    note: str = "",
    *,
    config: AlertConfig | None = None,
) -> Alert:
    """Move an alert along its lifecycle; a verified alert is sent to every country concerned."""
    if status not in STATUSES:
        raise AlertError(
            "invalid_status", f"{status!r} is not a status: one of {', '.join(STATUSES)}"
        )
    with writing(engine) as c:
        alert = read(c, alert_id, lock=True)
        allowed = TRANSITIONS[alert.status]
        if status not in allowed:
            can = ", ".join(allowed) if allowed else "nowhere (closed is final)"
            raise AlertError(
                "invalid_transition",
                f"alert {alert_id} cannot go from {alert.status} to {status}: from "
                f"{alert.status} it can go to {can}",
            )
        changed = replace(alert, status=status, updated_at=now)
        _write(c, changed)
        said = f"{alert.status} -> {status}" + (f": {note}" if note else "")
        record(c, alert_id, "status_changed", actor, said, now)
        ensure_deliveries(c, changed, config or AlertConfig(), now)
        return changed


def set_owner(engine: Engine, alert_id: str, owner: str, actor: str, now: datetime) -> Alert:
    """Give the alert to ``owner`` (the person following it up)."""
    if not owner.strip():
        raise AlertError("invalid_request", "an owner is a name, not blank")
    with writing(engine) as c:
        alert = read(c, alert_id, lock=True)
        changed = replace(alert, owner=owner.strip(), updated_at=now)
        _write(c, changed)
        record(
            c, alert_id, "owner_set", actor, f"{alert.owner or 'nobody'} -> {owner.strip()}", now
        )
        return changed


def comment(engine: Engine, alert_id: str, note: str, actor: str, now: datetime) -> Alert:
    """Add a comment to the alert's history."""
    if not note.strip():
        raise AlertError("invalid_request", "a comment needs some text")
    with writing(engine) as c:
        alert = read(c, alert_id, lock=True)
        changed = replace(alert, updated_at=now)
        _write(c, changed)
        record(c, alert_id, "comment", actor, note.strip(), now)
        return changed
