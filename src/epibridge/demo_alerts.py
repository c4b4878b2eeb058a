"""The demo's fifth stage: signals become alerts, the cross-border one reaches both sides.

What a hub analyst and two national duty officers would do, on the running hub:

1. the hub turns the detection stage's signals (significant space-time clusters and
   detector alarms, ``hub/alert_signals.py``) into alerts, merging the ones that touch
   (``hub alerts raise``);
2. the analyst reviews every cross-border alert and verifies it (``hub alerts status``):
   a verified alert is signed by the hub and queued for every country it concerns;
3. each of those countries' nodes fetches its inbox over HTTP, checks the hub's
   signature against its trust list, keeps the alert and acknowledges it by name
   (``node alerts --ack``);
4. the hub's delivery table shows who received and acknowledged what.

Alerts that are not cross-border stay ``new`` in the inbox for the analyst (the
dashboard's alert page), as they would after a real detection run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from epibridge.demo_detect import DISEASE, METHOD, DemoDetection
from epibridge.demo_exchange import DemoHub
from epibridge.hub.alert_delivery import Delivery, deliveries
from epibridge.hub.alert_signals import cluster_signals, temporal_signals
from epibridge.hub.alert_store import Alert, alerts
from epibridge.hub.alerts import raise_alerts, set_status
from epibridge.node import hub_link
from epibridge.node.alerts import acknowledge, hub_transport, pull

ANALYST = "hub analyst (demo)"


@dataclass(frozen=True)
class AlertStage:
    alerts: tuple[Alert, ...]
    verified: tuple[str, ...]  # alert ids the analyst verified
    acknowledged: tuple[tuple[str, str], ...]  # (alert id, country)
    deliveries: tuple[Delivery, ...]


def _now() -> datetime:
    return datetime.now(UTC)


def alert_all(
    running: DemoHub, workspace: Path, detection: DemoDetection, console: Console
) -> AlertStage:
    """Raise, verify, deliver and acknowledge (the module docstring)."""
    signals = cluster_signals(detection.scan, DISEASE) + temporal_signals(
        detection.temporal.points, METHOD
    )
    with running.hub.open_store() as store:
        engine = store.engine
        raised = raise_alerts(engine, signals, _now())
        with engine.connect() as c:
            held = alerts(c, disease=DISEASE)
        verified = []
        for alert in held:
            if alert.cross_border and alert.status == "new":
                set_status(engine, alert.alert_id, "under_review", ANALYST, _now())
                set_status(
                    engine,
                    alert.alert_id,
                    "verified",
                    ANALYST,
                    _now(),
                    "cross-border cluster: counts checked with both national focal points",
                )
                verified.append(alert.alert_id)
    acknowledged = []
    for alert_id, countries in ((a.alert_id, a.countries) for a in held if a.alert_id in verified):
        for country in countries:
            home = workspace / "nodes" / country
            transport = hub_transport(home, running.passes[country], running.url, _now)
            try:
                kept = pull(home, transport, hub_link.trust(home, _now()), _now())
                if alert_id in kept.kept:
                    acknowledge(home, transport, alert_id, f"duty officer, {country}", _now())
                    acknowledged.append((alert_id, country))
            finally:
                transport.close()
    with running.hub.open_store() as store, store.engine.connect() as c:
        final = tuple(alerts(c, disease=DISEASE))
        sent = tuple(deliveries(c))
    stage = AlertStage(final, tuple(verified), tuple(acknowledged), sent)
    _show(stage, len(signals), len(raised.created), console)
    return stage


def _show(stage: AlertStage, signals: int, created: int, console: Console) -> None:
    console.print(
        f"\n[bold]alerts[/]: {signals} signals -> {created} alerts (touching signals merged); "
        f"the analyst verified the {len(stage.verified)} cross-border one(s), which the hub "
        "signed and sent to each country concerned",
        soft_wrap=True,
    )
    table = Table(title="alerts at the hub, and who acknowledged them (node inbox over HTTP)")
    for col in ("alert", "status", "areas", "weeks", "sent to", "acknowledged by"):
        table.add_column(col)
    by_alert: dict[str, list[Delivery]] = {}
    for d in stage.deliveries:
        by_alert.setdefault(d.alert_id, []).append(d)
    for a in sorted(stage.alerts, key=lambda a: (not a.cross_border, a.first_week, a.alert_id)):
        sent = by_alert.get(a.alert_id, [])
        table.add_row(
            a.alert_id + (" (cross-border)" if a.cross_border else ""),
            a.status,
            ", ".join(a.areas),
            f"{a.first_week} to {a.last_week}",
            ", ".join(sorted({d.country for d in sent})) or "-",
            ", ".join(
                f"{d.country}: {d.acknowledged_by}" for d in sent if d.acknowledged_at is not None
            )
            or "-",
        )
    console.print(table)
