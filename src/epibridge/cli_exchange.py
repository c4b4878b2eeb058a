"""Command-line commands for a node's exchange with its hub: ``epibridge node ...``.

``join`` pins the hub, ``seal`` puts a protected release in the outbox, ``push`` sends
what is due over HTTP, ``status`` shows every item, ``export`` writes one to a file for
a USB stick, ``receipt`` records the receipt the hub handed back for it, ``trust``
installs a trust list that came by file, ``alerts`` fetches and acknowledges the hub's
alerts. Registered on the main app by ``cli.py``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from epibridge.cli_node import HomeOption, _home
from epibridge.model.errors import EpibridgeError

node_app = typer.Typer(
    help="Send sealed submissions to the hub: join, seal, push, status, export.",
    no_args_is_help=True,
)
HUB_URL_ENV = "EPIBRIDGE_HUB_URL"


def _console() -> Console:
    return Console(highlight=False)


def _now() -> datetime:
    return datetime.now(UTC)


@node_app.command("join")
def join(
    hub_keys: Annotated[
        Path, typer.Option("--hub-keys", help="The hub's public key bundle ('keys export').")
    ],
    trust_list: Annotated[
        Path, typer.Option("--trust-list", help="The hub's signed trust list (trust-list.jws).")
    ],
    url: Annotated[
        str | None, typer.Option("--url", help="The hub's address, for pushes over HTTP.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Pin the hub's root key and accept its trust list (once, when the node is set up)."""
    from epibridge.node.hub_link import join as run

    link, trust = run(_home(home), hub_keys, trust_list.read_text(encoding="utf-8"), _now(), url)
    console = _console()
    console.print(f"joined the hub with root {link.root_kid}", soft_wrap=True)
    console.print(
        f"  trust list #{trust.serial}: {len(trust.roots) - 1} countries, valid until "
        f"{trust.next_update:%Y-%m-%d %H:%M} UTC",
        soft_wrap=True,
    )
    console.print(f"  hub address: {link.url or 'none (exchange by file)'}", soft_wrap=True)


@node_app.command("trust")
def trust(
    file: Annotated[Path, typer.Argument(help="A newer trust list from the hub (by file).")],
    home: HomeOption = None,
) -> None:
    """Install a newer trust list that arrived by file (push fetches it over HTTP)."""
    from epibridge.node.hub_link import update_trust

    accepted = update_trust(_home(home), file.read_text(encoding="utf-8"), _now())
    _console().print(f"trust list #{accepted.serial} accepted")


@node_app.command("seal")
def seal(
    release: Annotated[Path, typer.Argument(help="A release folder written by 'protect'.")],
    revision_of: Annotated[
        str | None,
        typer.Option("--revision-of", help="The submission id this release corrects."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Sign and encrypt a protected release for the hub and queue it in the outbox."""
    from epibridge.cli_keys import open_key_store
    from epibridge.node import hub_link
    from epibridge.node.outbox import Outbox
    from epibridge.node.state import NodeState
    from epibridge.node.submit import seal_release
    from epibridge.protect import state_path

    where = _home(home)
    now = _now()
    keys = open_key_store(where)
    current = hub_link.trust(where, now)
    with NodeState(state_path(where)) as state:
        done = seal_release(
            release, keys, current, Outbox(state), where / "outbox", now, revision_of
        )
    item = done.item
    verb = "sealed" if done.new else "already sealed"
    _console().print(
        f"{verb} release {item.release_id} as submission {item.submission_id} "
        f"({item.size:,} bytes, {item.state}): {escape(str(item.path))}",
        soft_wrap=True,
    )


@node_app.command("push")
def push(
    url: Annotated[
        str | None,
        typer.Option("--url", help=f"The hub's address (default: ${HUB_URL_ENV} or the joined)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Send every due submission to the hub and record its answers (safe to repeat)."""
    import os

    from epibridge.cli_keys import _passphrase
    from epibridge.node.exchange import push_over_http

    where = _home(home)
    keys_passphrase = _passphrase(confirm=False)
    address = url or os.environ.get(HUB_URL_ENV)
    report = push_over_http(where, keys_passphrase, address, _now, random.Random())
    console = _console()
    if report.trust_serial is not None:
        console.print(f"trust list #{report.trust_serial} from the hub")
    elif report.trust_problem:
        console.print(f"[yellow]kept the current trust list[/]: {report.trust_problem}")
    push_report = report.push
    console.print(
        f"sent {push_report.sent}: {len(push_report.acknowledged)} acknowledged "
        f"({len(push_report.duplicates)} the hub already had), {len(push_report.rejected)} "
        f"rejected, {len(push_report.retrying)} to retry"
        + (f"; {len(push_report.recovered)} recovered" if push_report.recovered else "")
    )
    _status_table(console, where)


def _status_table(console: Console, where: Path) -> None:
    from epibridge.node.outbox import Outbox
    from epibridge.node.state import NodeState
    from epibridge.protect import state_path
    from epibridge.transport.keystore import KeyStore

    if not state_path(where).exists() and not KeyStore.exists(where):
        # A read must not make a node: a mistyped --home would get an empty one.
        raise EpibridgeError(
            f"{where}: no node here (neither its state nor its keys)\n"
            "  what to do: give the node's folder with --home (or EPIBRIDGE_HOME); "
            "'epibridge keys init' starts a new node"
        )
    with NodeState(state_path(where)) as state:
        items = Outbox(state).status()
    table = Table(title="outbox", box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    table.add_column("submission", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("bytes", justify="right", no_wrap=True)
    notes = []
    for i in items:
        table.add_row(i.submission_id, i.state, str(i.attempts), f"{i.size:,}")
        note = f"queued {i.created_at:%Y-%m-%d %H:%M}"
        if i.state == "rejected":
            note += f"; refused: {i.reason}: {i.last_error}"
        elif i.state == "acknowledged":
            note += "; the hub's receipt is kept"
        else:
            if i.next_attempt_at is not None:
                note += f"; next try {i.next_attempt_at:%Y-%m-%d %H:%M:%S}"
            if i.last_error:
                note += f"; last: {i.last_error}"
        notes.append(f"  {i.submission_id[:8]}  {note}")
    console.print(table)
    for line in notes:
        console.print(line, soft_wrap=True)
    if not items:
        console.print("the outbox is empty: seal a release with 'epibridge node seal'")


@node_app.command("status")
def status(home: HomeOption = None) -> None:
    """List the outbox: queued / sending / sent / acknowledged / rejected, with the hub's reason."""
    _status_table(_console(), _home(home))


@node_app.command("export")
def export(
    submission_id: Annotated[str, typer.Argument(help="The submission to export (node status).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write (for a USB stick).")],
    home: HomeOption = None,
) -> None:
    """Write a queued submission to a file for offline transfer ('hub import' reads it)."""
    from epibridge.node.exchange import export_submission

    item = export_submission(_home(home), submission_id, out, _now())
    _console().print(
        f"wrote submission {item.submission_id} ({item.size:,} bytes) to {escape(str(out))}; "
        "bring back the receipt 'hub import' writes and record it with 'node receipt'",
        soft_wrap=True,
    )


@node_app.command("receipt")
def receipt(
    file: Annotated[Path, typer.Argument(help="The receipt file 'hub import' wrote.")],
    home: HomeOption = None,
) -> None:
    """Record the hub's receipt for a submission that travelled by file."""
    from epibridge.node.exchange import record_receipt

    item = record_receipt(_home(home), file, _now())
    _console().print(f"submission {item.submission_id}: {item.state}")


@node_app.command("audit")
def audit(
    url: Annotated[
        str | None,
        typer.Option("--url", help=f"The hub's address (default: ${HUB_URL_ENV} or the joined)."),
    ] = None,
    countersign: Annotated[
        bool,
        typer.Option(
            "--countersign/--no-countersign", help="Countersign the hub's tree head once checked."
        ),
    ] = True,
    home: HomeOption = None,
) -> None:
    """Check the hub's transparency log: it extends what we saw, and holds our submissions."""
    import os

    from epibridge.cli_keys import _passphrase
    from epibridge.node.log_check import check_log

    where = _home(home)
    done = check_log(
        where, _passphrase(confirm=False), url or os.environ.get(HUB_URL_ENV), _now, countersign
    )
    console = _console()
    since = (
        "first check"
        if done.previous_size is None
        else f"consistent with the {done.previous_size} leaves seen before"
    )
    console.print(
        f"the hub's log: {done.tree_size} leaves, root {done.root_hash[:16]}... ({since})",
        soft_wrap=True,
    )
    console.print(f"  {done.included} acknowledged submissions proven in the log")
    if done.countersigned:
        console.print(f"  countersigned head {done.tree_size} as {where.name}")


@node_app.command("alerts")
def alerts(
    ack: Annotated[
        str | None, typer.Option("--ack", help="Acknowledge this alert (its id) to the hub.")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who read the alert (with --ack).")] = None,
    fetch: Annotated[
        bool, typer.Option("--fetch/--no-fetch", help="Fetch the hub's inbox first.")
    ] = True,
    url: Annotated[
        str | None,
        typer.Option("--url", help=f"The hub's address (default: ${HUB_URL_ENV} or the joined)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Fetch the hub's alerts for this country (signatures checked), list them, acknowledge."""
    import os

    from epibridge.cli_keys import _passphrase
    from epibridge.node import hub_link
    from epibridge.node.alerts import acknowledge, hub_transport, list_alerts, pull

    if ack is not None and not by:
        raise typer.BadParameter("say who read the alert: --by NAME", param_hint="--ack")
    where, console = _home(home), _console()
    if fetch or ack is not None:
        transport = hub_transport(
            where, _passphrase(confirm=False), url or os.environ.get(HUB_URL_ENV), _now
        )
        try:
            if fetch:
                report = pull(where, transport, hub_link.trust(where, _now()), _now())
                console.print(f"{len(report.kept)} alerts from the hub")
                for refused in report.refused:
                    console.print(f"[red]refused[/] {escape(refused)}", soft_wrap=True)
            if ack is not None and by:
                acknowledge(where, transport, ack, by, _now())
                console.print(f"acknowledged {ack} as read by {escape(by)}")
        finally:
            transport.close()
    table = Table(title="alerts", box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    kept = list_alerts(where)
    # The id is what --ack takes: never cut; the other columns wrap instead.
    table.add_column(
        "alert", no_wrap=True, min_width=max((len(a.alert_id) for a in kept), default=5)
    )
    for col in ("status", "weeks", "countries", "acknowledged"):
        table.add_column(col)
    for a in kept:
        table.add_row(
            a.alert_id,
            str(a.alert.get("status")),
            f"{a.alert.get('first_week')} to {a.alert.get('last_week')}",
            ", ".join(a.alert.get("countries", [])),
            str(a.acknowledged["by"]) if a.acknowledged else "no",
        )
    console.print(table)
    for a in kept:
        console.print(f"  {a.alert_id}: {escape(str(a.alert.get('title')))}", soft_wrap=True)
    if not kept:
        console.print("no alerts kept on this node")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
