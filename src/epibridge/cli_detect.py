"""``epibridge detect``: run an outbreak detector over counts in a CSV (docs/cli.md).

Registered on the main app by ``cli.py``. Parses the options, reads the input
(``detection.py``), calls the detector over all series at once, writes the result.
Options carry R's parameter names; an option left out takes the method's preset (R's
value), so ``--method farrington`` alone is R's vignette configuration.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import typer
from rich.console import Console

from epibridge.cli_engine import EngineOption, SparkMasterOption, engine_session
from epibridge.detect_kernels import (
    Kernel,
    cusum_kernel,
    ears_kernel,
    farrington_kernel,
    glrnb_kernel,
)
from epibridge.detection import EARS, Method
from epibridge.engines import by_series
from epibridge.model.errors import EpibridgeError


class DetectOptionError(EpibridgeError):
    """An option that does not fit the method or the input."""


def _limit54(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        cases, weeks = (int(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not CASES,WEEKS (e.g. 5,4)", param_hint="--limit54"
        ) from None
    return cases, weeks


def _farrington(method: str, options: dict[str, Any]) -> Any:
    from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY

    preset = FARRINGTON if method == "farrington" else NOUFAILY
    given = {k: v for k, v in options.items() if v is not None}
    return replace(preset, **given)


def detect(
    input: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="CSV: series, t or date, observed[, population]."),
    ],
    method: Annotated[
        Method,
        typer.Option("--method", help="ears-c1, ears-c2, ears-c3, farrington or noufaily."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output CSV (default: standard output).")
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            "--alpha",
            help="One-sided level (R: 0.001 for C1/C2, 0.025 for C3, 0.05 for Farrington).",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First monitored point: an integer t or a date, as the input's time column "
            "(default: the first with enough history).",
        ),
    ] = None,
    baseline: Annotated[
        int, typer.Option("--baseline", min=3, help="EARS baseline length (R: 7).")
    ] = 7,
    min_sigma: Annotated[
        float, typer.Option("--min-sigma", min=0.0, help="EARS lower bound of the sd (R: 0).")
    ] = 0.0,
    c3: Annotated[
        Literal["r", "documented"],
        typer.Option("--c3", help="C3 as R computes it (r) or as EARS documents it."),
    ] = "r",
    b: Annotated[int | None, typer.Option("--b", min=1, help="Farrington: years back.")] = None,
    w: Annotated[
        int | None, typer.Option("--w", min=0, help="Farrington: half-window in weeks.")
    ] = None,
    periods: Annotated[
        int | None, typer.Option("--periods", min=1, help="Farrington: noPeriods.")
    ] = None,
    past_weeks_not_included: Annotated[
        int | None,
        typer.Option("--past-weeks-not-included", min=0, help="Farrington: recent weeks left out."),
    ] = None,
    weights_threshold: Annotated[
        float | None,
        typer.Option("--weights-threshold", help="Farrington: reweighting threshold."),
    ] = None,
    threshold: Annotated[
        Literal["delta", "nbPlugin", "muan"] | None,
        typer.Option("--threshold", help="Farrington: delta, nbPlugin or muan."),
    ] = None,
    powertrans: Annotated[
        Literal["2/3", "1/2", "none"] | None,
        typer.Option("--powertrans", help="Farrington: 2/3, 1/2 or none."),
    ] = None,
    trend: Annotated[
        bool | None, typer.Option("--trend/--no-trend", help="Farrington: allow a time trend.")
    ] = None,
    p_threshold_trend: Annotated[
        float | None,
        typer.Option("--p-threshold-trend", help="Farrington: p-value to keep the trend."),
    ] = None,
    reweight: Annotated[
        bool | None,
        typer.Option("--reweight/--no-reweight", help="Farrington: down-weight past outbreaks."),
    ] = None,
    limit54: Annotated[
        str | None,
        typer.Option("--limit54", help="Farrington: CASES,WEEKS minimum for an alarm (5,4)."),
    ] = None,
    freq: Annotated[
        int | None, typer.Option("--freq", min=1, help="Time points per year (R's freq; 52).")
    ] = None,
    k: Annotated[
        float | None, typer.Option("--k", help="CUSUM: reference value (R: 1.04).")
    ] = None,
    h: Annotated[
        float | None, typer.Option("--h", help="CUSUM: decision interval (R: 2.26).")
    ] = None,
    trans: Annotated[
        Literal["standard", "rossi", "anscombe", "pearsonNegBin"] | None,
        typer.Option("--trans", help="CUSUM: the transformation (R: standard)."),
    ] = None,
    c_arl: Annotated[
        float | None, typer.Option("--c-arl", help="GLR: threshold of the statistic (R: 5).")
    ] = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Detect aberrations in every series of a CSV of counts; write expected values, upper
    bounds, alarms (0/1) and p-values per series and time point."""
    from epibridge.detection import read_series, time_index, write_result

    series = read_series(input)
    n_time = len(series.times)
    dates = (
        [d.isoformat() for d in series.times if isinstance(d, date)]
        if series.time_column == "date"
        else None
    )
    kernel: Kernel
    if method in EARS:
        from epibridge.algorithms.ears import first_monitored

        kind = EARS[method]
        first = time_index(series, start, "--from") if start else first_monitored(kind, baseline)
        if first >= n_time:
            raise DetectOptionError(
                f"{input}: {n_time} time points are too few for {method} (it needs {first + 1})"
            )
        kernel = ears_kernel(
            kind, alpha=alpha, baseline=baseline, min_sigma=min_sigma, c3_variant=c3, start=first
        )
    elif method in ("cusum", "glrnb"):
        first = time_index(series, start, "--from") if start else (freq or 52)
        if first >= n_time:
            raise DetectOptionError(
                f"{input}: {n_time} time points are too few for {method} with --from at "
                f"point {first + 1}; give more data or an earlier --from"
            )
        if method == "cusum":
            from epibridge.algorithms.cusum import DEFAULT_ALPHA, DEFAULT_H, DEFAULT_K

            kernel = cusum_kernel(
                start=first,
                k=DEFAULT_K if k is None else k,
                h=DEFAULT_H if h is None else h,
                trans=trans or "standard",
                alpha=DEFAULT_ALPHA if alpha is None else alpha,
            )
        else:
            from epibridge.algorithms.glrnb import DEFAULT_C_ARL

            kernel = glrnb_kernel(
                start=first,
                c_arl=DEFAULT_C_ARL if c_arl is None else c_arl,
                alpha=alpha,
                period=freq or 52,
            )
    else:
        from epibridge.algorithms.farrington import first_feasible

        control = _farrington(
            method,
            {
                "alpha": alpha,
                "b": b,
                "w": w,
                "no_periods": periods,
                "past_weeks_not_included": past_weeks_not_included,
                "weights_threshold": weights_threshold,
                "threshold_method": threshold,
                "powertrans": powertrans,
                "trend": trend,
                "p_threshold_trend": p_threshold_trend,
                "reweight": reweight,
                "limit54": _limit54(limit54),
                "freq": freq,
            },
        )
        found = (
            time_index(series, start, "--from") if start else first_feasible(control, n_time, dates)
        )
        if found is None:
            raise DetectOptionError(
                f"{input}: no time point has {control.b} years plus {control.w} weeks of "
                "history; give more data, or a smaller --b"
            )
        first = found
        kernel = farrington_kernel(
            control, np.array(dates, dtype="datetime64[D]") if dates else None, first
        )
    with engine_session(engine, spark_master) as spark:
        got = by_series(kernel, series.observed, series.population, engine=engine, spark=spark)
    rows = write_result(
        out,
        series,
        first,
        got.expected,
        got.upperbound,
        got.alarm,
        got.defined,
        got.pvalue,
        out=sys.stdout if out is None else None,
    )
    if out is not None:
        alarms = int(got.alarm[:, first:].sum())
        Console(stderr=True, highlight=False).print(
            f"{method}: {len(series.names)} series, {rows:,} monitored points, {alarms:,} "
            f"alarms -> {out}"
        )


def register(app: typer.Typer) -> None:
    app.command()(detect)
