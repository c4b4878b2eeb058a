"""Command-line commands for the hub's alerts: ``epibridge hub alerts ...``.

``raise`` runs the space-time scan and temporal detection over what the hub holds for a
disease and raises or merges alerts (``hub/alerts.py``); ``list`` and ``show`` read them;
``status``, ``owner`` and ``comment`` review them; ``ihr`` prints the IHR Annex 2 worksheet
pre-filled from the data; ``escalate`` retries failed webhooks and
e-mails and escalates deliveries nobody acknowledged. Registered on ``hub_app`` at the
end of ``cli_hub.py``; imports of ``cli_hub`` are made inside the commands, so either
module can be imported first.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from epibridge.cli_engine import EngineOption, SparkMasterOption
from epibridge.detection import Method
from epibridge.hub.alert_status import Status

if TYPE_CHECKING:
    from epibridge.hub.alert_config import AlertConfig
    from epibridge.hub.home import HubHome
    from epibridge.transport.keystore import SigningKey

alerts_app = typer.Typer(
    help="Alerts raised from detection: list, review, raise, escalate.", no_args_is_help=True
)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The hub's folder. Default: $EPIBRIDGE_HUB_HOME or ./epibridge-hub.",
    ),
]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who makes the change (kept in the history). Default: $USER."),
]


def _console() -> Console:
    return Console(highlight=False)


def _number(value: object, form: str) -> str:
    """A figure of an alert's detail, rounded for reading (as stored when not a number)."""
    return format(value, form) if isinstance(value, int | float) else str(value)


def _now() -> datetime:
    return datetime.now(UTC)


def _hub(home: Path | None) -> HubHome:
    from epibridge.cli_hub import _hub_home
    from epibridge.hub.home import HubHome

    return HubHome(_hub_home(home))


def _by(by: str | None) -> str:
    return by or os.environ.get("USER") or "hub operator"


def _signing(hub: HubHome) -> SigningKey:
    from epibridge.cli_keys import _passphrase

    return hub.keys(_passphrase(confirm=False)).signing_key(_now())


def _config(hub: HubHome) -> AlertConfig:
    from epibridge.hub.alert_config import load_config

    return load_config(hub.folder)


def _send(hub: HubHome, config: AlertConfig, console: Console) -> None:
    """Send the webhooks and e-mails due (failed ones again); say what happened."""
    from epibridge.hub.alert_delivery import deliver_pending

    needed = any(c.webhook or c.email for c in config.countries.values())
    if not needed:
        return
    with hub.open_store() as store:
        report = deliver_pending(store.engine, config, _signing(hub), _now())
    for alert_id, country, channel in report.delivered:
        console.print(f"delivered {alert_id} to {country} by {channel}", soft_wrap=True)
    for alert_id, country, channel, why in report.failed:
        console.print(
            f"[yellow]not delivered[/] {alert_id} to {country} by {channel}: {escape(why)} "
            "(tried again on the next run)",
            soft_wrap=True,
        )


def _asked(status: str | None, disease: str | None) -> list[str]:
    return [f"{n} {v}" for n, v in (("status", status), ("disease", disease)) if v]


@alerts_app.command("list")
def list_(
    status: Annotated[
        Status | None, typer.Option("--status", help="Only alerts in this status.")
    ] = None,
    disease: Annotated[str | None, typer.Option("--disease", help="Only this disease.")] = None,
    home: HomeOption = None,
) -> None:
    """The hub's alerts, oldest first, with how far their deliveries got."""
    from epibridge.hub.alert_delivery import deliveries
    from epibridge.hub.alert_store import alerts

    with _hub(home).open_store() as store, store.engine.connect() as c:
        held = [a for a in alerts(c, disease=disease) if status in (None, a.status)]
        sent = {a.alert_id: deliveries(c, a.alert_id) for a in held}
    table = Table(title="alerts")
    # Ids are what the next command takes: never cut, the other columns wrap instead.
    width = max((len(a.alert_id) for a in held), default=5)
    table.add_column("alert", no_wrap=True, min_width=width)
    for col in ("status", "kind", "countries", "weeks", "owner", "acknowledged"):
        table.add_column(col)
    for a in held:
        rows = sent[a.alert_id]
        countries = sorted({d.country for d in rows})
        acked = sorted({d.country for d in rows if d.acknowledged_at is not None})
        table.add_row(
            a.alert_id,
            a.status + (" (early warning)" if a.early_warning else ""),
            a.kind,
            ", ".join(a.countries),
            f"{a.first_week} to {a.last_week}",
            a.owner or "",
            f"{len(acked)}/{len(countries)}" if countries else "not sent",
        )
    console = _console()
    console.print(table)
    if not held and (status or disease):
        console.print(f"no alerts with {' and '.join(_asked(status, disease))}")
    elif not held:
        console.print("no alerts: 'epibridge hub alerts raise --disease CODE' looks for some")


@alerts_app.command("show")
def show(
    alert_id: Annotated[str, typer.Argument(metavar="ALERT", help="The alert's id.")],
    home: HomeOption = None,
) -> None:
    """One alert: its state, figures, history and deliveries."""
    from epibridge.hub.alert_delivery import deliveries
    from epibridge.hub.alert_store import events, read

    with _hub(home).open_store() as store, store.engine.connect() as c:
        alert = read(c, alert_id)
        history = events(c, alert_id)
        sent = deliveries(c, alert_id)
    console = _console()
    console.print(f"[bold]{escape(alert.title)}[/]", soft_wrap=True)
    console.print(
        f"{alert.alert_id}: {alert.status}, owner {alert.owner or 'nobody'}; "
        f"{alert.kind}, {len(alert.detail['signals'])} signals "
        f"({', '.join(alert.detail['methods'])}); smallest p "
        f"{_number(alert.detail['min_p_value'], '.3g')}; observed "
        f"{_number(alert.detail['observed'], ',.0f')}, expected "
        f"{_number(alert.detail['expected'], ',.1f')}"
        + ("; early warning" if alert.early_warning else ""),
        soft_wrap=True,
    )
    console.print(f"areas: {', '.join(alert.areas)}", soft_wrap=True)
    for e in history:
        console.print(
            f"  {e.event_no:>3} {e.at:%Y-%m-%d %H:%M} {e.kind:<14} {escape(e.actor)}: "
            f"{escape(e.text)}",
            soft_wrap=True,
        )
    for d in sent:
        state = (
            f"acknowledged by {d.acknowledged_by} {d.acknowledged_at:%Y-%m-%d %H:%M}"
            if d.acknowledged_at
            else ("delivered" if d.delivered_at else f"pending ({d.attempts} tries)")
        )
        escalated = f", escalated {d.escalated_at:%Y-%m-%d %H:%M}" if d.escalated_at else ""
        console.print(f"  -> {d.country} by {d.channel}: {state}{escalated}", soft_wrap=True)


@alerts_app.command("raise")
def raise_(
    disease: Annotated[str, typer.Option("--disease", help="The regional disease code.")],
    method: Annotated[
        Method, typer.Option("--method", help="The temporal detector, as for 'hub detect'.")
    ] = "noufaily",
    weeks: Annotated[
        int, typer.Option("--weeks", min=1, help="Weeks monitored by temporal detection.")
    ] = 8,
    scan_weeks: Annotated[
        int, typer.Option("--scan-weeks", min=2, help="Weeks of history the scan covers.")
    ] = 26,
    threshold: Annotated[
        float,
        typer.Option("--threshold", min=0.0, max=1.0, help="Largest cluster p-value raised."),
    ] = 0.05,
    replicates: Annotated[
        int, typer.Option("--replicates", min=999, help="Monte Carlo replicates of the scan.")
    ] = 999,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the scan's replicates.")] = 1,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Use the counts the hub held then (ISO 8601). Default: now."),
    ] = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    home: HomeOption = None,
) -> None:
    """Scan and detect over the hub's current counts of a disease; raise or merge alerts."""
    import numpy as np

    from epibridge.cli_engine import engine_session
    from epibridge.cli_hub import _as_of
    from epibridge.engines import block_map
    from epibridge.hub.alert_signals import Signal, cluster_signals, temporal_signals
    from epibridge.hub.alerts import raise_alerts
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.regional import counts_as_of
    from epibridge.hub.signals import ScanGrid, SignalError, scan_grid, scan_of
    from epibridge.hub.temporal import DetectionInput, TemporalError, detect_of, detection_input

    hub, now, console = _hub(home), _now(), _console()
    config = _config(hub)
    with hub.open_store() as store:
        cells = counts_as_of(store.engine, _as_of(as_of), Filters(diseases=(disease,)))
    signals: list[Signal] = []
    # What there is to scan and monitor is known before a Spark session starts.
    grid: ScanGrid | None = None
    prepared: DetectionInput | None = None
    try:
        grid = scan_grid(cells, disease, weeks=scan_weeks)
    except SignalError as exc:
        console.print(f"[yellow]no scan[/]: {escape(str(exc))}", soft_wrap=True)
    try:
        prepared = detection_input(cells, disease, method=method, weeks=weeks)
    except TemporalError as exc:
        console.print(f"[yellow]no temporal detection[/]: {escape(str(exc))}", soft_wrap=True)
    if grid is not None or (prepared is not None and prepared.done is None):
        with engine_session(engine, spark_master) as spark:
            if grid is not None:
                scan = scan_of(
                    grid,
                    np.random.default_rng(seed),
                    replicates=replicates,
                    map_blocks=block_map(engine, spark),
                )
                signals += cluster_signals(scan, disease, threshold)
            if prepared is not None:
                found = detect_of(prepared, engine=engine, spark=spark)
                signals += temporal_signals(found.alarms, method)
    with hub.open_store() as store:
        report = raise_alerts(store.engine, signals, now, config=config)
    console.print(
        f"{len(signals)} signals: {len(report.created)} new alerts, {len(report.merged)} merged "
        f"into open ones, {report.known} already raised; {report.sent} deliveries started",
        soft_wrap=True,
    )
    for alert_id in report.created:
        console.print(f"  new: {alert_id}")
    if report.sent:
        _send(hub, config, console)


@alerts_app.command("status")
def status(
    alert_id: Annotated[str, typer.Argument(metavar="ALERT", help="The alert's id.")],
    new: Annotated[
        str,
        typer.Argument(metavar="STATUS", help="under_review, verified, discarded or closed."),
    ],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the history).")] = "",
    by: ByOption = None,
    home: HomeOption = None,
) -> None:
    """Move an alert along new -> under_review -> verified | discarded -> closed."""
    from epibridge.hub.alerts import set_status

    hub, console = _hub(home), _console()
    config = _config(hub)
    with hub.open_store() as store:
        changed = set_status(store.engine, alert_id, new, _by(by), _now(), note, config=config)
    console.print(f"{alert_id} is {changed.status}")
    if changed.status == "verified":
        _send(hub, config, console)


@alerts_app.command("owner")
def owner(
    alert_id: Annotated[str, typer.Argument(metavar="ALERT", help="The alert's id.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Who follows the alert up.")],
    by: ByOption = None,
    home: HomeOption = None,
) -> None:
    """Give an alert to the person who follows it up."""
    from epibridge.hub.alerts import set_owner

    with _hub(home).open_store() as store:
        set_owner(store.engine, alert_id, name, _by(by), _now())
    _console().print(f"{alert_id} is followed up by {escape(name)}")


@alerts_app.command("comment")
def comment(
    alert_id: Annotated[str, typer.Argument(metavar="ALERT", help="The alert's id.")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The comment.")],
    by: ByOption = None,
    home: HomeOption = None,
) -> None:
    """Add a comment to an alert's history."""
    from epibridge.hub.alerts import comment as add

    with _hub(home).open_store() as store:
        add(store.engine, alert_id, text, _by(by), _now())
    _console().print(f"comment added to {alert_id}")


@alerts_app.command("escalate")
def escalate(
    after_hours: Annotated[
        float,
        typer.Option("--after-hours", min=0.0, help="Unacknowledged this long is overdue."),
    ] = 24.0,
    home: HomeOption = None,
) -> None:
    """Retry failed webhooks and e-mails; escalate deliveries nobody acknowledged in time."""
    from epibridge.hub.alert_delivery import escalate_overdue

    hub, console = _hub(home), _console()
    config = _config(hub)
    _send(hub, config, console)
    with hub.open_store() as store:
        report = escalate_overdue(
            store.engine,
            _now(),
            timedelta(hours=after_hours),
            config=config,
            key=_signing(hub) if config.escalation.webhook or config.escalation.email else None,
        )
    for alert_id, country, channel in report.escalated:
        console.print(f"escalated {alert_id}: {country} by {channel} not acknowledged")
    for problem in report.problems:
        console.print(f"[yellow]escalation contact not reached[/]: {escape(problem)}")
    console.print(
        f"{len(report.escalated)} deliveries escalated, escalation contact told "
        f"{report.notified} times"
    )


@alerts_app.command("ihr")
def ihr(
    alert_id: Annotated[str, typer.Argument(metavar="ALERT_ID", help="The alert's id.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the worksheet (JSON) here instead of printing it."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Use the data the hub held then (ISO 8601). Default: now."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """The alert's IHR Annex 2 worksheet, pre-filled from the hub's data (JSON), for the
    national focal point to complete and sign (dashboard or POST /v1/alerts/ID/ihr)."""
    import json

    from epibridge.cli_hub import _as_of
    from epibridge.hub.alert_store import read
    from epibridge.hub.ihr import completions, prefill

    with _hub(home).open_store() as store:
        with store.engine.connect() as c:
            alert = read(c, alert_id)
            signed = completions(c, alert_id)
        worksheet = prefill(store.engine, alert, _as_of(as_of))
    text = json.dumps(worksheet, indent=2, ensure_ascii=False) + "\n"
    console = _console()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote the IHR worksheet of {alert_id} to {escape(str(out))}")
    if signed:
        who = ", ".join(f"{d['country']} ({d['signed_by']}, {d['signed_at']})" for d in signed)
        typer.echo(f"signed worksheets: {who}", err=True)
