"""``epibridge bulletin``: the weekly regional bulletin of the hub, as HTML or PDF.

Reads the hub's store as of a time (no passphrase needed: nothing is signed), renders
the file (``bulletin/``), writes it and logs its SHA-256 as a release leaf of the
transparency log. Errors (a malformed week, no data, a file that cannot be written) are
one message and exit code 1.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

DEFAULT_HUB_NAME = "epibridge regional hub"


class Format(StrEnum):
    html = "html"
    pdf = "pdf"


def _hub_name(folder: Path) -> str:
    """``name`` in the ``[hub]`` table of hub.toml, if the operator set one."""
    try:
        doc = tomllib.loads((folder / "hub.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_HUB_NAME
    name = doc.get("hub", {}).get("name")
    return name.strip() if isinstance(name, str) and name.strip() else DEFAULT_HUB_NAME


def _as_of(text: str | None) -> datetime:
    from epibridge.bulletin.content import BulletinError

    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BulletinError(
            f"--as-of {text!r} is not a time: write it as ISO 8601, e.g. "
            "2026-11-23T08:00:00+00:00 or 2026-11-23 (midnight UTC)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def bulletin(
    week: Annotated[str, typer.Option("--week", help="The ISO week, e.g. 2026-W47.")],
    format: Annotated[
        Format, typer.Option("--format", help="html (one offline file) or pdf (A4).")
    ] = Format.html,
    disease: Annotated[
        str | None,
        typer.Option("--disease", help="The disease. Default: the only one with counts that week."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The file to write. Default: ./bulletin-<WEEK>.<FORMAT>."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Read the store as it was at this time (ISO 8601; default: now). The same "
            "week, disease and time give the same file.",
        ),
    ] = None,
    hub_name: Annotated[
        str | None,
        typer.Option(
            "--hub-name",
            help=f"The hub's name on the title. Default: name in hub.toml's [hub] table, "
            f"or '{DEFAULT_HUB_NAME}'.",
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="The hub's folder. Default: $EPIBRIDGE_HUB_HOME or ./epibridge-hub."
        ),
    ] = None,
) -> None:
    """Write the weekly regional bulletin and log it as a hub release."""
    from epibridge.bulletin.content import Source, gather, parse_week
    from epibridge.bulletin.html import render_html
    from epibridge.bulletin.pdf import build_pdf, missing_glyphs
    from epibridge.bulletin.release import publish
    from epibridge.cli_hub import _hub_home
    from epibridge.hub.home import HubHome
    from epibridge.model.errors import EpibridgeError

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        start = parse_week(week)
        when = _as_of(as_of)
        target = out or Path(f"bulletin-{week.strip()}.{format.value}")
        hub = HubHome(_hub_home(home))
        with hub.open_store() as store:
            source = Source(
                store.engine, hub.agreements(), hub.folder, hub_name or _hub_name(hub.folder)
            )
            made = gather(source, start, when, disease)
            missing: dict[str, list[str]] = {}
            if format is Format.html:
                data = render_html(made)
            else:
                document = build_pdf(made)
                data = bytes(document.output())
                missing = missing_glyphs(document)
            released = publish(store.engine, made, format.value, data, target, datetime.now(UTC))
    except EpibridgeError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None
    for font, chars in missing.items():
        err.print(
            f"[yellow]warning:[/] font {escape(font)} has no glyph for {escape(' '.join(chars))}: "
            "those characters show as empty boxes in the PDF",
            soft_wrap=True,
        )
    logged = (
        f"logged as release leaf {released.leaf}"
        if released.leaf is not None
        else "already in the log (the same file was released before)"
    )
    console.print(
        f"wrote {escape(str(released.path))}: {made.disease} {made.week} as of "
        f"{made.as_of.isoformat(timespec='seconds')}, {released.size_bytes:,} bytes, "
        f"SHA-256 {released.sha256}; {logged}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("bulletin")(bulletin)
