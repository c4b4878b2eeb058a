"""Command-line commands for a party's own keys: ``epibridge keys init | rotate | revoke | show``.

Registered on the main ``epibridge`` app by ``cli.py`` through ``register``. Each command
reads the passphrase (environment or hidden prompt), takes the time once here at the edge,
calls one ``KeyStore`` method and prints public facts only: key ids, uses, validity
windows and revocations. The passphrase and private keys are never printed.
"""

from __future__ import annotations

import getpass
import os
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import click
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from epibridge.cli_node import HomeOption, _home
from epibridge.model.errors import EpibridgeError
from epibridge.transport.keys import DEFAULT_VALIDITY, Use, format_time
from epibridge.transport.keystore import (
    MIN_PASSPHRASE,
    KeyInfo,
    KeyStore,
    KeyStoreInfo,
)

PASSPHRASE_ENV = "EPIBRIDGE_KEY_PASSPHRASE"
# The command line's choices; a test checks they equal ``trust.REVOCATION_REASONS``.
Reason = Literal["key_compromise", "superseded", "retired", "unspecified"]
Status = Literal["current", "valid", "not yet valid", "expired", "revoked"]

keys_app = typer.Typer(
    help=(
        "Create and manage this party's signing and encryption keys "
        f"(passphrase from ${PASSPHRASE_ENV} or a hidden prompt)."
    ),
    no_args_is_help=True,
)


def _console() -> Console:
    # Made per command, not at import, so the width follows the environment of the call.
    return Console(highlight=False)


def _passphrase(confirm: bool) -> str:
    """The key passphrase: from the environment if set, else typed without echo (on stderr)."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    text = (
        f"New key passphrase (at least {MIN_PASSPHRASE} characters)"
        if confirm
        else "Key passphrase"
    )
    try:
        with warnings.catch_warnings():
            # Without a terminal getpass reads the piped line and warns that it cannot
            # hide it: the line is what the user meant to give, the warning is noise.
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            value: str = typer.prompt(
                text, hide_input=True, confirmation_prompt=confirm, err=True, show_default=False
            )
    except (click.exceptions.Abort, typer.Abort):
        raise EpibridgeError(
            "this command opens the key store and no key passphrase was given\n"
            f"  what to do: set {PASSPHRASE_ENV}, or run the command in a terminal to type it"
        ) from None
    return value


def open_key_store(home: Path) -> KeyStore:
    """The key store in ``home``, asking for its passphrase only once it is known to be
    there (a wrong folder is said before anything is typed)."""
    KeyStore.require(home)
    return KeyStore.open(home, _passphrase(confirm=False))


def key_status(key: KeyInfo, current: set[str], now: datetime) -> Status:
    """One word for a key at ``now``; ``current`` holds the newest usable kid of each use."""
    if key.revoked is not None and key.revoked.revoked_at <= now:
        return "revoked"
    if now >= key.not_after:
        return "expired"
    if now < key.not_before:
        return "not yet valid"
    return "current" if key.kid in current else "valid"


def current_kids(info: KeyStoreInfo, now: datetime) -> set[str]:
    """The kid each use would sign or seal with at ``now``: the newest valid, unrevoked one.

    Ordered like ``KeyStore.signing_key`` chooses (start, then end, then kid), so the
    table marks the key the node actually uses.
    """
    chosen: dict[str, KeyInfo] = {}
    for key in info.keys:
        revoked = key.revoked is not None and key.revoked.revoked_at <= now
        if revoked or not key.not_before <= now < key.not_after:
            continue
        best = chosen.get(key.use)
        rank = (key.not_before, key.not_after, key.kid)
        if best is None or rank > (best.not_before, best.not_after, best.kid):
            chosen[key.use] = key
    return {key.kid for key in chosen.values()}


def keys_table(info: KeyStoreInfo, now: datetime) -> Table:
    """The keys of a store at ``now``, oldest first: public facts only."""
    current = current_kids(info, now)
    # Light borders and collapsed padding so the 43-character kids fit an 80-column terminal.
    table = Table(
        title=f"keys of {info.country} at {format_time(now)}",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        show_edge=False,
    )
    table.add_column("kid", no_wrap=True)
    table.add_column("use")
    table.add_column("valid from", min_width=10)
    table.add_column("valid to", min_width=10)
    table.add_column("status", min_width=7, overflow="fold")
    for key in sorted(info.keys, key=lambda k: (k.not_before, k.use, k.kid)):
        status: str = key_status(key, current, now)
        if key.revoked is not None:
            status += f" ({key.revoked.reason}, {_when(key.revoked.revoked_at)})"
        table.add_row(key.kid, key.use, _when(key.not_before), _when(key.not_after), status)
    return table


def _when(at: datetime) -> str:
    # A space, not "T", so a narrow terminal wraps the time under the date, not the kid.
    return format_time(at).replace("T", " ")


def _print_store(console: Console, store: KeyStore, now: datetime) -> None:
    info = store.show()
    console.print(keys_table(info, now))
    # root.pem is the documented file name (docs/security.md); it may live offline.
    root_here = (store.folder / "root.pem").exists()
    where = "here" if root_here else "offline (needed only to rotate)"
    console.print(f"root {info.root_kid}: {where}", soft_wrap=True)
    console.print(f"store {escape(str(store.folder))}", soft_wrap=True)


@keys_app.command("init")
def init(
    country: Annotated[
        str,
        typer.Option(
            "--country", help="This party's ISO 3166 alpha-3 country code (or HUB for the hub)."
        ),
    ],
    validity_days: Annotated[
        int,
        typer.Option(
            "--validity-days",
            min=1,
            help="How long each new key is valid, in days (also for later rotations).",
        ),
    ] = DEFAULT_VALIDITY.days,
    home: HomeOption = None,
) -> None:
    """Create the key store: a root key and a first signing and encryption key."""
    passphrase = _passphrase(confirm=True)
    now = datetime.now(UTC)
    days = timedelta(days=validity_days)
    store = KeyStore.init(_home(home), country, passphrase, now, validity=days)
    console = _console()
    console.print(f"[green]created[/] the key store of {store.country}")
    _print_store(console, store, now)


@keys_app.command("rotate")
def rotate(
    use: Annotated[
        Use,
        typer.Option("--use", help="Which key to add: sig (signing) or enc (encryption)."),
    ],
    home: HomeOption = None,
) -> None:
    """Add a new signing or encryption key; older keys stay valid until they expire."""
    store = open_key_store(_home(home))
    now = datetime.now(UTC)
    cert = store.rotate(use, now)
    console = _console()
    console.print(
        f"[green]new {cert.use} key[/] {cert.kid}, valid until {format_time(cert.not_after)}",
        soft_wrap=True,
    )
    _print_store(console, store, now)


@keys_app.command("revoke")
def revoke(
    kid: Annotated[str, typer.Argument(metavar="KID", help="The key id to revoke (keys show).")],
    reason: Annotated[
        Reason,
        typer.Option("--reason", help="Why: key_compromise, superseded, retired or unspecified."),
    ],
    home: HomeOption = None,
) -> None:
    """Revoke a key from now on; send the updated revocations to the hub."""
    store = open_key_store(_home(home))
    now = datetime.now(UTC)
    done = store.revoke(kid, reason, now)
    console = _console()
    console.print(
        f"[yellow]revoked[/] {done.kid} ({done.reason}) at {format_time(done.revoked_at)}",
        soft_wrap=True,
    )
    _print_store(console, store, now)


@keys_app.command("show")
def show(home: HomeOption = None) -> None:
    """List the keys: kid, use, validity and status (current, valid, expired, revoked)."""
    store = open_key_store(_home(home))
    _print_store(_console(), store, datetime.now(UTC))


@keys_app.command("export")
def export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the public key bundle (JSON).")
    ],
    home: HomeOption = None,
) -> None:
    """Write the public key bundle (root, certificates, revocations) to send to the hub."""
    from epibridge.transport.bundle import exported_bundle, write_bundle

    bundle = exported_bundle(_home(home))
    write_bundle(bundle, out)
    console = _console()
    console.print(
        f"wrote the public keys of {bundle.country} to {escape(str(out))} "
        f"({len(bundle.certificates)} certificates, {len(bundle.revoked)} revocations)",
        soft_wrap=True,
    )
    console.print(
        f"root kid {bundle.root_kid}: read it to the other side by another channel "
        "(phone, signed letter) so they can check the file is yours",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the ``keys`` command group to ``app``."""
    app.add_typer(keys_app, name="keys")
