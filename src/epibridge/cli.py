"""The ``epibridge`` command line: parse arguments, call one function, render the result."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from epibridge import (
    __version__,
    cli_bulletin,
    cli_detect,
    cli_exchange,
    cli_hub,
    cli_keys,
    cli_node,
)
from epibridge.cli_engine import EngineOption, SparkMasterOption, engine_session
from epibridge.model.errors import EpibridgeError

app = typer.Typer(
    name="epibridge",
    help="Share disease-surveillance data across borders, safely and usefully.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"epibridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Share disease-surveillance data across borders, safely and usefully."""


@contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str, float | None], None]]:
    """A progress bar with the current step, share done and elapsed time (on stderr).

    Quiet when stderr is not a terminal. The share comes from the database's own
    progress estimate of the running query; steps without one show a moving bar.
    """
    if not enabled or not err_console.is_terminal:
        yield lambda step, done: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def update(step: str, done: float | None) -> None:
            if done is None:
                bar.update(task, description=step, total=None)
            else:
                bar.update(task, description=step, total=1.0, completed=done)

        yield update


def summary_table(result: object) -> Table:
    from epibridge.ingest import IngestResult

    assert isinstance(result, IngestResult)
    table = Table(title=f"ingest with profile {result.profile}", show_footer=True)
    table.add_column("file", footer="total")
    table.add_column("read", justify="right", footer=f"{result.read:,}")
    table.add_column("accepted", justify="right", footer=f"{result.accepted:,}")
    table.add_column("quarantined", justify="right", footer=f"{result.quarantined:,}")
    table.add_column("quarantined by rule")
    for f in result.files:
        rules = ", ".join(f"{rule} {n:,}" for rule, n in f.by_rule.most_common())
        table.add_row(f.file, f"{f.read:,}", f"{f.accepted:,}", f"{f.quarantined:,}", rules)
    return table


@app.command()
def ingest(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="INPUT...", help="National input file(s), all in the profile's format."
        ),
    ],
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-p",
            help="A shipped profile name (see `epibridge profiles`) or a profile file.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the harmonized table (cases, counts, reporting or denominators"
            ".parquet), quarantine.csv and summary.json.",
        ),
    ],
    today: Annotated[
        str | None,
        typer.Option(help="Day of the run for the future-date rule (YYYY-MM-DD; default: today)."),
    ] = None,
    weekly: Annotated[
        bool,
        typer.Option(help="Also aggregate a line list to counts per area, disease and period."),
    ] = True,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Validate and harmonize national data; quarantine what cannot be used."""
    from epibridge.ingest import ingest as run
    from epibridge.profiles import load_profile

    day = _day(today)
    prof = load_profile(profile)
    with engine_session(engine, spark_master) as spark, progress() as step:
        result = run(
            prof, inputs, out, day, progress=step, weekly=weekly, engine=engine, spark=spark
        )
    console.print(summary_table(result))
    if result.totals:
        console.print(
            "  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in result.totals.items())
        )
    width = max(len(kind) for kind in result.outputs)
    for kind, path in result.outputs.items():
        console.print(f"  {kind:<{width}} {path}", soft_wrap=True)


def _day(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"'{text}' is not a date written as YYYY-MM-DD", param_hint="--today"
        ) from None


@app.command("profiles")
def list_profiles() -> None:
    """List the shipped mapping profiles."""
    from epibridge.profiles import load_profile, shipped

    table = Table(title="shipped profiles (use the name with --profile)")
    # The name is what --profile takes: never cut, the other columns wrap instead.
    table.add_column("name", no_wrap=True, min_width=max(map(len, shipped()), default=4))
    for col in ("format", "dataset", "country", "title"):
        table.add_column(col)
    for name, path in sorted(shipped().items()):
        p = load_profile(path)
        table.add_row(name, p.format, p.dataset, p.country, p.title)
    console.print(table)


@app.command()
def demo(
    workspace: Annotated[
        Path,
        typer.Option(
            "--workspace", "-w", help="Folder for the demo's embedded databases and outputs."
        ),
    ] = Path("epibridge-demo"),
    today: Annotated[str | None, typer.Option(help="Day of the run (YYYY-MM-DD).")] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            help="Keep serving the dashboard after the run (until Ctrl-C), or print the "
            "summary and exit.",
        ),
    ] = True,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="The dashboard's port (127.0.0.1).")
    ] = 8000,
) -> None:
    """The whole chain on embedded defaults: ingest, protect, seal, hub, detect, alert,
    acknowledge; then the dashboard at http://127.0.0.1:PORT (docs/demo.md)."""
    from epibridge.demo import run_demo
    from epibridge.hub.serve import port_is_free

    if not port_is_free(port):
        raise typer.BadParameter(
            f"port {port} on 127.0.0.1 is taken (another demo still running?): stop it, "
            "or choose another with --port",
            param_hint="--port",
        )
    run_demo(workspace, _day(today), console, serve=serve, port=port)


cli_node.register(app)
cli_keys.register(app)
cli_exchange.register(app)
cli_hub.register(app)
cli_detect.register(app)
cli_bulletin.register(app)


def main() -> None:
    """Entry point: user errors become one clear message and exit code 2, never a traceback."""
    try:
        app()
    except EpibridgeError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except OSError as exc:
        # The machine said no (a folder that cannot be created, a full disk, no permission).
        where = f"{exc.filename}: " if exc.filename else ""
        err_console.print(
            f"[bold red]error:[/] {escape(where + (exc.strerror or str(exc)))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
