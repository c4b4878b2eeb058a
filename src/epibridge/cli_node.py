"""Command-line commands for what leaves a node: agreements, protect, the transfer register.

Registered on the main ``epibridge`` app by ``cli.py``; each command parses its options,
calls one function and renders the result.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from epibridge.cli_engine import EngineOption, SparkMasterOption, engine_session

HOME_HELP = (
    "The node's home folder: its state (stops, privacy ledger, transfer register) and secrets."
)
DEFAULT_HOME = Path("epibridge-node")

console = Console()
agreements_app = typer.Typer(help="Check and manage data-sharing agreements.", no_args_is_help=True)


def _home(home: Path | None) -> Path:
    if home is not None:
        return home
    env = os.environ.get("EPIBRIDGE_HOME")
    return Path(env) if env else DEFAULT_HOME


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"'{text}' is not a date written as YYYY-MM-DD", param_hint=option
        ) from None


HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help=HOME_HELP + " Default: $EPIBRIDGE_HOME or ./epibridge-node."),
]


@agreements_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The agreement file (TOML).")],
) -> None:
    """Validate an agreement and print what it allows, in plain words."""
    from epibridge.agreements import load_agreement
    from epibridge.agreements.describe import describe

    agreement = load_agreement(file)
    console.print(f"[green]valid[/]: {file}")
    for line in describe(agreement):
        console.print(f"  {line}", soft_wrap=True, highlight=False)


@agreements_app.command("sign")
def sign(
    file: Annotated[Path, typer.Argument(help="The agreement file (TOML) to sign.")],
    home: HomeOption = None,
) -> None:
    """Sign an agreement with this party's key (kept in FILE.signatures.json beside it)."""
    from epibridge.agreements import load_agreement
    from epibridge.agreements.signing import (
        load_signatures,
        parties,
        save_signatures,
        sign_agreement,
        signatures_path,
    )
    from epibridge.cli_keys import open_key_store

    agreement = load_agreement(file)
    store = open_key_store(_home(home))
    now = datetime.now(UTC)
    where = signatures_path(file)
    existing = load_signatures(where) if where.exists() else None
    signed = sign_agreement(agreement, store.signing_key(now), store.country, now, existing)
    save_signatures(where, signed)
    have = sorted(signed.by_country())
    missing = [c for c in parties(agreement) if c not in have]
    console.print(
        f"{store.country} signed {agreement.id} v{agreement.version}; signatures in {where}",
        soft_wrap=True,
    )
    if missing:
        console.print(f"  still to sign: {', '.join(missing)} (send them both files)")
    else:
        console.print("  signed by both parties: data may flow under it once it is in force")


@agreements_app.command("stop")
def stop(
    file: Annotated[Path, typer.Argument(help="The agreement file (TOML) to stop.")],
    reason: Annotated[str, typer.Option(help="Why it is stopped (kept in the node's state).")],
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Stop every version of this agreement id.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Stop an agreement on this node: nothing more is released under it."""
    from epibridge.agreements import load_agreement
    from epibridge.node.state import NodeState
    from epibridge.node.stops import AgreementStops
    from epibridge.protect import state_path

    agreement = load_agreement(file)
    with NodeState(state_path(_home(home))) as state:
        done = AgreementStops(state).stop(
            agreement.id,
            None if all_versions else agreement.version,
            reason,
            datetime.now(UTC),
        )
    which = (
        "every version" if done.agreement_version is None else f"version {done.agreement_version}"
    )
    console.print(f"stopped agreement {done.agreement_id} ({which}): {done.reason}")


def protect(
    agreement: Annotated[
        Path, typer.Option("--agreement", "-a", help="The agreement file (TOML).")
    ],
    in_dir: Annotated[
        list[Path],
        typer.Option(
            "--in",
            help="Output folder of 'epibridge ingest' (cases/counts/reporting/denominators"
            ".parquet); repeatable, one folder per ingest run.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="New folder for the release and its receipt.")
    ],
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="Release only this dataset (counts, cases, reporting or denominators); "
            "repeatable.",
        ),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="Release only these allowed fields/breakdowns; repeatable."),
    ] = None,
    period_from: Annotated[
        str | None,
        typer.Option("--from", help="First day of the periods to release (YYYY-MM-DD)."),
    ] = None,
    period_to: Annotated[
        str | None,
        typer.Option("--to", help="Last day of the periods to release (YYYY-MM-DD)."),
    ] = None,
    published_through: Annotated[
        str | None,
        typer.Option(
            help="Last day covered by the national publication (for agreements that wait for it)."
        ),
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="Day of the run (YYYY-MM-DD; default: today).")
    ] = None,
    home: HomeOption = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Apply an agreement to harmonized data: write the release and its policy receipt."""
    from epibridge.agreements import load_agreement
    from epibridge.cli import progress
    from epibridge.protect import protect as run

    loaded = load_agreement(agreement)
    day = _date(today, "--today") or date.today()
    with engine_session(engine, spark_master) as spark, progress() as step:
        result = run(
            loaded,
            in_dir,
            out,
            _home(home),
            day,
            datetime.now(UTC),
            datasets=dataset,
            fields=field,
            period_from=_date(period_from, "--from"),
            period_to=_date(period_to, "--to"),
            published_through=_date(published_through, "--published-through"),
            progress=step,
            engine=engine,
            spark=spark,
        )
    table = Table(title=f"release {result.release_id} under {loaded.id} v{loaded.version}")
    for col in ("withheld", "why", "count"):
        table.add_column(col, justify="right" if col == "count" else "left")
    for w in result.withheld:
        table.add_row(w.what, w.why, f"{w.count:,}")
    if not result.withheld:
        table.add_row("nothing", "", "0")
    console.print(table)
    for name, info in result.receipt.get("files", {}).items():
        console.print(f"  {name:<15} {info['rows']:,} rows")
    privacy = result.receipt["datasets"].get("counts", {}).get("privacy")
    if privacy:
        console.print(
            f"  epsilon spent {privacy['epsilon']:g}; remaining this {privacy['budget_period']}: "
            f"{privacy['budget_remaining']:g}"
        )
    console.print(f"  receipt         {result.out / 'receipt.json'}", soft_wrap=True)


def transfers(
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the register to this CSV file.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Show the transfer register (every release: what, to whom, when, under which agreement)."""
    from epibridge.node.register import TransferRegister
    from epibridge.node.state import NodeState
    from epibridge.protect import state_path

    with NodeState(state_path(_home(home))) as state:
        register = TransferRegister(state)
        if csv is not None:
            n = register.export_csv(csv)
            console.print(f"wrote {n} transfers to {csv}")
            return
        rows = register.transfers()
    table = Table(title="transfer register")
    for col in ("when", "release", "to", "agreement", "legal basis", "datasets", "rows"):
        table.add_column(col)
    for t in rows:
        table.add_row(
            t.created_at.isoformat(timespec="seconds"),
            t.release_id[:8],
            t.recipient,
            f"{t.agreement_id} v{t.agreement_version}",
            t.legal_basis,
            t.datasets,
            f"{t.rows:,}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the node commands to ``app``."""
    app.command()(protect)
    app.command()(transfers)
    app.add_typer(agreements_app, name="agreements")
