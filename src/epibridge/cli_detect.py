"""``epibridge detect``: run an outbreak detector over counts in a CSV (docs/cli.md).

Registered on the main app by ``cli.py``. Parses the options, reads the input
(``detection.py``), calls the detector over all series at once, writes the result.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

Method = Literal["ears-c1", "ears-c2", "ears-c3"]
EARS: dict[str, Literal["C1", "C2", "C3"]] = {"ears-c1": "C1", "ears-c2": "C2", "ears-c3": "C3"}


def detect(
    input: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="CSV: series, t or date, observed[, population]."),
    ],
    method: Annotated[
        Method, typer.Option("--method", help="The detector: ears-c1, ears-c2 or ears-c3.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output CSV (default: standard output).")
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            "--alpha", help="One-sided level (R's default: 0.001 for C1/C2, 0.025 for C3)."
        ),
    ] = None,
    baseline: Annotated[
        int, typer.Option("--baseline", min=3, help="Baseline length in time points (R: 7).")
    ] = 7,
    min_sigma: Annotated[
        float, typer.Option("--min-sigma", min=0.0, help="Lower bound of the baseline sd (R: 0).")
    ] = 0.0,
    c3: Annotated[
        Literal["r", "documented"],
        typer.Option("--c3", help="C3 as R computes it (r) or as EARS documents it."),
    ] = "r",
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First monitored point: an integer t or a date, as the input's time column "
            "(default: the first with enough history).",
        ),
    ] = None,
) -> None:
    """Detect aberrations in every series of a CSV of counts; write expected values, upper
    bounds and alarms (0/1) per series and time point."""
    from epibridge.algorithms.ears import ears, first_monitored
    from epibridge.detection import read_series, time_index, write_result

    series = read_series(input)
    kind = EARS[method]
    first = (
        time_index(series, start, "--from")
        if start is not None
        else first_monitored(kind, baseline)
    )
    first = min(first, len(series.times))
    result = ears(
        series.observed,
        kind,
        alpha=alpha,
        baseline=baseline,
        min_sigma=min_sigma,
        c3_variant=c3,
        start=first if first < len(series.times) else None,
    )
    rows = write_result(
        out,
        series,
        first,
        result.expected,
        result.upperbound,
        result.alarm,
        result.defined,
        None,
        out=sys.stdout if out is None else None,
    )
    if out is not None:
        alarms = int(result.alarm[:, first:].sum())
        Console(stderr=True, highlight=False).print(
            f"{method}: {len(series.names)} series, {rows:,} monitored points, {alarms:,} "
            f"alarms -> {out}"
        )


def register(app: typer.Typer) -> None:
    app.command()(detect)
