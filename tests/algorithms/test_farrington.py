"""farringtonFlexible against R `surveillance` 1.20.3, point by point, and its properties.

References covered (tests/reference/surveillance/, see SOURCES.md there), 13 runs,
2,330 (series, time point) rows in all:

* integer epochs, every series: ``ref_salmonella_agona_{farrington,noufaily,
  noufaily_muan}.csv`` (113 + 43 + 43 rows) and ``ref_ha_{farrington,noufaily,
  noufaily_muan}.csv`` (12 districts: 1,092 + 252 + 252 rows) — the FARRINGTON and
  NOUFAILY presets (nbPlugin and muan);
* the man page examples on salmonella.agona, ``ref_farringtonFlexible_manex{1,2}_
  salmonella.agona.csv`` (b=4, alpha=0.1, noPeriods 1 and 10; 31 rows each);
* dated epochs (salmNewportGermany, reference points snapped to the weekday):
  ``ref_farringtonFlexible_{orig,noufaily_nbPlugin,noufaily_muan,noufaily_delta}_
  salmNewportGermany2011.csv`` (the vignette's configurations, 52 weeks each) and
  ``ref_farringtonFlexible_defaults_salmNewportGermany.csv`` (R's defaults and default
  range, 265 weeks).

For each row we require: upper bound within 1e-4 relative, identical alarms, NaN exactly
where R has NA (upper bound, expected, p-value, alarm), and the same expected value,
p-value and trend decision. Not covered by any reference: population offsets, missing
counts, reweight=False, powertrans "1/2" (properties below check what they can).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.stats import nbinom, poisson

from epibridge.algorithms import farrington as module
from epibridge.algorithms.farrington import (
    FARRINGTON,
    NOUFAILY,
    R_DEFAULTS,
    FarringtonControl,
    FarringtonParameterError,
    FarringtonResult,
    farrington_flexible,
    first_monitored,
)
from epibridge.algorithms.glm import fit_log_poisson

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "surveillance"
RTOL = 1e-4  # relative agreement required with R
SCORE_ATOL = 1e-4  # IRLS stops on a 1e-8 relative deviance change, not a zero gradient
ATOL = 1e-12  # only so that R's exact zeros compare with ours

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Counts:
    names: list[str]
    epochs: list[str]
    matrix: FloatArray  # series x time


@dataclass(frozen=True)
class Reference:
    series: NDArray[np.intp]
    time: NDArray[np.intp]  # 0-based
    observed: FloatArray
    columns: dict[str, FloatArray]  # upperbound, expected, pvalue (NaN = NA)
    alarm: NDArray[np.bool_]
    defined: NDArray[np.bool_]  # False where R's alarm is NA
    trend: NDArray[np.bool_]


def _counts(name: str) -> Counts:
    with (REFERENCE / name).open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    matrix = np.array([[float(v) for v in row[1:]] for row in rows]).T
    return Counts(header[1:], [row[0] for row in rows], matrix)


def _number(text: str) -> float:
    return float("nan") if text == "NA" else float(text)


def _reference(name: str, counts: Counts, first: int | None = None) -> Reference:
    """Per-week files name series and 1-based t; dated ones give the date. The man page
    files (integer epochs, one series) number the rows 1.. from ``first`` (0-based)."""
    with (REFERENCE / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if "series" in rows[0]:
        series = [counts.names.index(r["series"]) for r in rows]
        time = [int(r["t"]) - 1 for r in rows]
    elif first is not None:
        series = [0] * len(rows)
        time = [first + int(r["epoch"]) - 1 for r in rows]
    else:
        series = [0] * len(rows)
        time = [counts.epochs.index(r["epoch"]) for r in rows]
    alarms = [r["alarm"] for r in rows]
    return Reference(
        series=np.array(series, dtype=np.intp),
        time=np.array(time, dtype=np.intp),
        observed=np.array([float(r["observed"]) for r in rows]),
        columns={
            col: np.array([_number(r[col]) for r in rows])
            for col in ("upperbound", "expected", "pvalue")
        },
        alarm=np.array([a in {"1", "TRUE"} for a in alarms]),
        defined=np.array([a != "NA" for a in alarms]),
        trend=np.array([r["trend"] == "1" for r in rows]),
    )


def _assert_matches(result: FarringtonResult, counts: Counts, ref: Reference) -> None:
    at = (ref.series, ref.time)
    np.testing.assert_array_equal(counts.matrix[at], ref.observed, err_msg="data misaligned")
    ours = {"upperbound": result.upperbound, "expected": result.expected, "pvalue": result.pvalue}
    for column, theirs in ref.columns.items():
        mine = ours[column][at]
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs), err_msg=f"{column} NA")
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL, err_msg=column)
    np.testing.assert_array_equal(result.defined[at], ref.defined, err_msg="alarm NA places")
    np.testing.assert_array_equal(result.alarm[at], ref.alarm, err_msg="alarms")
    np.testing.assert_array_equal(result.trend[at], ref.trend, err_msg="trend kept")


# --- integer epochs, every series: salmonella.agona and ha (12 Berlin districts) -------

MUAN = replace(NOUFAILY, threshold_method="muan")
WEEKLY = [
    (data, f"ref_{ref}_{tag}.csv", control, (start, stop))
    for data, ref, stop, ranges in [
        ("salmonella.agona.csv", "salmonella_agona", 312, (199, 269)),
        ("ha.csv", "ha", 290, (199, 269)),
    ]
    for tag, control, start in [
        ("farrington", FARRINGTON, ranges[0]),
        ("noufaily", NOUFAILY, ranges[1]),
        ("noufaily_muan", MUAN, ranges[1]),
    ]
]


@pytest.mark.parametrize(("data", "ref", "control", "span"), WEEKLY)
def test_integer_epochs_match_r(
    data: str, ref: str, control: FarringtonControl, span: tuple[int, int]
) -> None:
    counts = _counts(data)
    reference = _reference(ref, counts)
    start, stop = span
    result = farrington_flexible(counts.matrix, control, start=start)
    n_series = counts.matrix.shape[0]
    expected_rows = {(s, t) for s in range(n_series) for t in range(start, stop)}
    assert set(zip(reference.series.tolist(), reference.time.tolist(), strict=True)) == (
        expected_rows
    )
    _assert_matches(result, counts, reference)
    assert np.isnan(result.upperbound[:, :start]).all()
    assert not result.defined[:, :start].any()


def test_ha_references_exercise_the_case_minimum_and_all_zero_baselines() -> None:
    """ha is sparse: R gives NA bounds almost everywhere (limit54) but p-values everywhere,
    many from baselines of zeros only, where R's IRLS runs ~20 iterations down to eps."""
    counts = _counts("ha.csv")
    reference = _reference("ref_ha_farrington.csv", counts)
    assert np.isnan(reference.columns["upperbound"]).sum() == 1090
    assert not np.isnan(reference.columns["pvalue"]).any()
    muan = _reference("ref_ha_noufaily_muan.csv", counts)
    assert np.isnan(muan.columns["pvalue"]).sum() == 35  # exp() overflow: R's NA


MANEX = {
    "manex1": replace(R_DEFAULTS, b=4, weights_threshold=1.0, past_weeks_not_included=3, alpha=0.1),
    "manex2": replace(
        R_DEFAULTS,
        b=4,
        no_periods=10,
        past_weeks_not_included=26,
        p_threshold_trend=1.0,
        alpha=0.1,
    ),
}


@pytest.mark.parametrize("example", sorted(MANEX))
def test_man_page_examples_match_r(example: str) -> None:
    counts = _counts("salmonella.agona.csv")
    reference = _reference(
        f"ref_farringtonFlexible_{example}_salmonella.agona.csv", counts, first=281
    )
    np.testing.assert_array_equal(reference.time, np.arange(281, 312))
    result = farrington_flexible(counts.matrix, MANEX[example], start=281)
    _assert_matches(result, counts, reference)


# --- dated epochs: salmNewportGermany (the package vignette) ----------------------------

VIGNETTE_FARRINGTON = replace(R_DEFAULTS, b=4, weights_threshold=1.0, past_weeks_not_included=3)
VIGNETTE_NOUFAILY = replace(
    R_DEFAULTS,
    b=4,
    no_periods=10,
    past_weeks_not_included=26,
    p_threshold_trend=1.0,
    threshold_method="nbPlugin",
)
DATED = {
    "orig": VIGNETTE_FARRINGTON,
    "noufaily_nbPlugin": VIGNETTE_NOUFAILY,
    "noufaily_muan": replace(VIGNETTE_NOUFAILY, threshold_method="muan"),
    "noufaily_delta": replace(VIGNETTE_NOUFAILY, threshold_method="delta"),
}


@pytest.mark.parametrize("config", sorted(DATED))
def test_vignette_dated_configurations_match_r(config: str) -> None:
    counts = _counts("salmNewportGermany.csv")
    reference = _reference(f"ref_farringtonFlexible_{config}_salmNewportGermany2011.csv", counts)
    start = int(reference.time[0])
    assert counts.epochs[start] == "2011-01-03"
    np.testing.assert_array_equal(reference.time, np.arange(start, start + 52))
    dates = np.array(counts.epochs, dtype="datetime64[D]")
    result = farrington_flexible(
        counts.matrix, DATED[config], dates=dates, start=start, stop=start + 52
    )
    _assert_matches(result, counts, reference)
    assert np.isnan(result.upperbound[:, start + 52 :]).all()


def test_r_defaults_on_dated_epochs_match_r() -> None:
    """R's own defaults and range; its first point reaches back 261 weeks (5 years snapped
    to Mondays), so its oldest window loses a week before the data, as R's does."""
    counts = _counts("salmNewportGermany.csv")
    reference = _reference("ref_farringtonFlexible_defaults_salmNewportGermany.csv", counts)
    dates = np.array(counts.epochs, dtype="datetime64[D]")
    result = farrington_flexible(counts.matrix, R_DEFAULTS, dates=dates)
    assert result.start == first_monitored(R_DEFAULTS) == int(reference.time[0])
    np.testing.assert_array_equal(reference.time, np.arange(result.start, 528))
    _assert_matches(result, counts, reference)


def test_reference_dates_snap_to_the_same_weekday() -> None:
    monday = dt.date(2009, 1, 19)
    back = [module._same_weekday_years_back(monday, i) for i in range(6)]
    assert all(d.isoweekday() == 1 for d in back)
    assert [(monday - d).days // 7 for d in back] == [0, 52, 104, 157, 209, 261]
    leap = dt.date(2012, 2, 29)  # a Wednesday; 2011-02-29 is R's 2011-03-01
    assert module._same_weekday_years_back(leap, 1) == dt.date(2011, 3, 2)


# --- presets, quantiles, the GLM ---------------------------------------------------------


def test_presets_are_the_published_configurations() -> None:
    assert (FARRINGTON.b, FARRINGTON.w, FARRINGTON.no_periods) == (3, 3, 1)
    assert (FARRINGTON.weights_threshold, FARRINGTON.weeks_excluded) == (1.0, 3)
    assert (FARRINGTON.threshold_method, FARRINGTON.powertrans) == ("delta", "2/3")
    assert (NOUFAILY.b, NOUFAILY.w, NOUFAILY.no_periods) == (5, 3, 10)
    assert (NOUFAILY.weights_threshold, NOUFAILY.weeks_excluded) == (2.58, 26)
    assert (NOUFAILY.threshold_method, NOUFAILY.powertrans) == ("nbPlugin", "none")
    for control in (FARRINGTON, NOUFAILY, R_DEFAULTS):
        assert (control.alpha, control.p_threshold_trend, control.limit54) == (0.05, 0.05, (5, 4))
        assert control.reweight
        assert control.trend
    assert R_DEFAULTS.weeks_excluded == R_DEFAULTS.w == 3
    assert first_monitored(FARRINGTON) == 159


@pytest.mark.parametrize("mean", [0.3, 1.0, 2.5, 7.0])
def test_discrete_quantiles_follow_r_at_exact_probabilities(mean: float) -> None:
    """R's search is left-continuous: at p = cdf(q) exactly it returns q, not q + 1."""

    def pois_cdf(v: FloatArray) -> FloatArray:
        return np.asarray(poisson.cdf(v, mean), dtype=np.float64)

    def nb_cdf(v: FloatArray) -> FloatArray:
        return np.asarray(nbinom.cdf(v, mean, 0.4), dtype=np.float64)

    for q in range(6):
        level = float(poisson.cdf(q, mean))
        start = np.asarray([poisson.ppf(level, mean)], dtype=np.float64)
        assert module._r_quantile(pois_cdf, level, start)[0] == q
        level = float(nbinom.cdf(q, mean, 0.4))
        bad_start = np.asarray([nbinom.ppf(level, mean, 0.4) + 3], dtype=np.float64)
        assert module._r_quantile(nb_cdf, level, bad_start)[0] == q


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=8, max_size=30),
    st.booleans(),
    st.sampled_from([None, 0.5, 3.0]),
)
def test_batched_irls_solves_the_score_equations(
    values: list[int], trend: bool, weight: float | None
) -> None:
    """At convergence X' W (y - mu) / mu = 0 (weighted Poisson score), for each fit."""
    y = np.array(values, dtype=np.float64)[None, :]  # positive counts: a finite MLE
    n = y.shape[1]
    x = np.stack([np.ones(n), np.arange(n) - n / 2.0], axis=-1)[None]
    columns = np.array([[True, trend]])
    mask = np.ones_like(y, dtype=np.bool_)
    prior = None if weight is None else np.where(np.arange(n) % 2 == 0, weight, 1.0)[None]
    fit = fit_log_poisson(x, y, mask, columns, prior_weights=prior)
    assert fit.converged[0]
    weights = np.ones(n) if prior is None else prior[0]
    score = x[0][:, columns[0]].T @ (weights * (y[0] - fit.mu[0]))
    np.testing.assert_allclose(score, 0.0, atol=SCORE_ATOL * float(y.sum()))
    if not trend:
        assert fit.coef[0, 1] == 0.0
        np.testing.assert_allclose(fit.mu[0], np.average(y[0], weights=weights), rtol=1e-4)


# --- properties of the whole detector ---------------------------------------------------


def _random_counts(seed: int, n_series: int = 3, n_time: int = 230) -> FloatArray:
    rng = np.random.default_rng(seed)
    season = 1.0 + 0.5 * np.sin(2 * np.pi * np.arange(n_time) / 52)
    level = rng.uniform(0.5, 12.0, size=(n_series, 1))
    return rng.poisson(level * season).astype(np.float64)


SMALL = {
    "farrington": replace(FARRINGTON, b=2),
    "noufaily": replace(NOUFAILY, b=3, no_periods=4, threshold_method="muan"),
    "sqrt": replace(FARRINGTON, b=3, powertrans="1/2", reweight=False),
    "none": replace(FARRINGTON, b=3, powertrans="none", trend=False, limit54=(0, 4)),
}


@pytest.mark.parametrize("config", sorted(SMALL))
def test_all_series_at_once_equals_one_at_a_time_and_any_batch_size(
    config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = _random_counts(7)
    control = SMALL[config]
    together = farrington_flexible(counts, control)
    monkeypatch.setattr(module, "_BATCH_CELLS", 300)  # forces many small batches
    fields = ("expected", "upperbound", "pvalue", "score", "phi", "trend", "alarm", "defined")
    for s in range(counts.shape[0]):
        alone = farrington_flexible(counts[s : s + 1], control)
        for name in fields:
            np.testing.assert_allclose(
                getattr(alone, name)[0].astype(np.float64),
                getattr(together, name)[s].astype(np.float64),
                rtol=1e-9,
                err_msg=name,
            )


@pytest.mark.parametrize("config", sorted(SMALL))
def test_missing_counts_never_alarm_and_nothing_looks_ahead(config: str) -> None:
    counts = _random_counts(11)
    counts[0, [120, 150, 170, 200]] = np.nan
    control = SMALL[config]
    result = farrington_flexible(counts, control)
    missing = np.isnan(counts)
    assert not result.alarm[missing].any()
    assert np.isnan(result.upperbound[missing]).all()
    assert result.defined[:, result.start :].all()  # a missing count still gets a model
    cut = 210
    truncated = counts.copy()
    truncated[:, cut:] = np.nan
    before = farrington_flexible(truncated, control)
    np.testing.assert_array_equal(before.upperbound[:, :cut], result.upperbound[:, :cut])
    np.testing.assert_array_equal(before.alarm[:, :cut], result.alarm[:, :cut])


def test_constant_population_offset_changes_nothing_but_scaled_rates_do() -> None:
    counts = _random_counts(3)
    control = replace(FARRINGTON, trend=False)  # the trend test compares counts with rates
    plain = farrington_flexible(counts, control)
    constant = farrington_flexible(counts, control, population=np.full(counts.shape, 5e4))
    np.testing.assert_allclose(constant.upperbound, plain.upperbound, rtol=1e-7)
    np.testing.assert_array_equal(constant.alarm, plain.alarm)
    # doubling the population at the current week only doubles the expected count there
    grown = np.full(counts.shape, 5e4)
    grown[:, 200] = 1e5
    bigger = farrington_flexible(counts, control, population=grown, start=200, stop=201)
    both = ~np.isnan(plain.expected[:, 200])
    np.testing.assert_allclose(bigger.expected[both, 200], 2 * plain.expected[both, 200], rtol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"control": replace(FARRINGTON, alpha=0.7)}, "farrington_alpha_out_of_range"),
        ({"control": replace(FARRINGTON, b=0)}, "farrington_bad_integer"),
        ({"control": replace(FARRINGTON, limit54=(5, 0))}, "farrington_bad_limit54"),
        ({"control": replace(FARRINGTON, no_periods=60)}, "farrington_too_many_periods"),
        (
            {"control": replace(FARRINGTON, threshold_method=cast(Any, "x"))},
            "farrington_unknown_threshold_method",
        ),
        (
            {"control": replace(FARRINGTON, powertrans=cast(Any, "3/4"))},
            "farrington_unknown_powertrans",
        ),
        ({"start": 100}, "farrington_start_too_early"),
        ({"start": 220, "stop": 210}, "farrington_bad_range"),
        ({"population": np.zeros((3, 230))}, "farrington_bad_population"),
        ({"dates": np.arange(5)}, "farrington_bad_dates"),
    ],
)
def test_refusals_say_why(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(FarringtonParameterError) as caught:
        farrington_flexible(_random_counts(1), **kwargs)
    assert caught.value.reason == reason
    assert caught.value.message


def test_refuses_a_vector_negative_counts_and_dates_without_history() -> None:
    with pytest.raises(FarringtonParameterError) as caught:
        farrington_flexible(np.zeros(300))
    assert caught.value.reason == "farrington_not_a_matrix"
    with pytest.raises(FarringtonParameterError) as caught:
        farrington_flexible(-np.ones((1, 300)))
    assert caught.value.reason == "farrington_bad_count"
    dates = np.arange("2010-01-04", "2014-06-01", 7, dtype="datetime64[D]")
    with pytest.raises(FarringtonParameterError) as caught:
        farrington_flexible(np.ones((1, dates.size)), FARRINGTON, dates=dates, start=157)
    assert caught.value.reason == "farrington_start_too_early"
