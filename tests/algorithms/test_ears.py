"""EARS C1/C2/C3 against R `surveillance` 1.20.3, point by point, and its properties.

The reference files (tests/reference/surveillance/, see SOURCES.md there) hold R's
upper bound and alarm for every monitored point; NA is where R gives no value. We
require: the same rows monitored, upper bounds within 1e-4 relative, identical alarms,
and NaN / undefined exactly where R has NA. The properties check what the references
cannot: missing counts, scaling, no look-ahead, vectorisation, and the documented C3.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.stats import norm

from epibridge.algorithms.ears import (
    C3Variant,
    EarsParameterError,
    EarsResult,
    Method,
    ears,
    first_monitored,
)

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "surveillance"
METHODS: tuple[Method, ...] = get_args(Method)
VARIANTS: tuple[C3Variant, ...] = get_args(C3Variant)
RTOL = 1e-4  # relative agreement required with R
ATOL = 1e-12  # only so that R's exact zeros compare with ours


@dataclass(frozen=True)
class Counts:
    names: list[str]
    epochs: list[str]
    matrix: NDArray[np.float64]  # series x time


@dataclass(frozen=True)
class Reference:
    series: NDArray[np.intp]
    time: NDArray[np.intp]  # 0-based
    observed: NDArray[np.float64]
    upperbound: NDArray[np.float64]  # NaN where R gives NA
    alarm: NDArray[np.bool_]
    defined: NDArray[np.bool_]  # False where R's alarm is NA


def _counts(name: str) -> Counts:
    with (REFERENCE / name).open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    matrix = np.array([[float(v) for v in row[1:]] for row in rows]).T
    return Counts(header[1:], [row[0] for row in rows], matrix)


def _number(text: str) -> float:
    return float("nan") if text == "NA" else float(text)


def _reference(name: str, counts: Counts) -> Reference:
    """Read a ref file: per-week files name series and 1-based t; vignette ones dates."""
    with (REFERENCE / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if "series" in rows[0]:
        series = [counts.names.index(r["series"]) for r in rows]
        time = [int(r["t"]) - 1 for r in rows]
    else:
        series = [0] * len(rows)
        time = [counts.epochs.index(r["epoch"]) for r in rows]
    alarms = [r["alarm"] for r in rows]
    return Reference(
        series=np.array(series, dtype=np.intp),
        time=np.array(time, dtype=np.intp),
        observed=np.array([float(r["observed"]) for r in rows]),
        upperbound=np.array([_number(r["upperbound"]) for r in rows]),
        alarm=np.array([a in {"1", "TRUE"} for a in alarms]),
        defined=np.array([a != "NA" for a in alarms]),
    )


def _assert_matches(result: EarsResult, counts: Counts, ref: Reference) -> None:
    at = (ref.series, ref.time)
    np.testing.assert_array_equal(counts.matrix[at], ref.observed, err_msg="data misaligned")
    ours = result.upperbound[at]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref.upperbound), err_msg="NA places")
    np.testing.assert_allclose(ours, ref.upperbound, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(result.defined[at], ref.defined, err_msg="alarm NA places")
    np.testing.assert_array_equal(result.alarm[at], ref.alarm, err_msg="alarms")


# --- every series of ha (12 Berlin districts) and salmonella.agona, R's default range ----

WEEKLY = [
    (data, ref, method)
    for data, ref in [("ha.csv", "ha"), ("salmonella.agona.csv", "salmonella_agona")]
    for method in METHODS
]


@pytest.mark.parametrize(("data", "ref", "method"), WEEKLY)
def test_default_range_matches_r(data: str, ref: str, method: Method) -> None:
    counts = _counts(data)
    reference = _reference(f"ref_{ref}_ears{method}.csv", counts)
    result = ears(counts.matrix, method)
    n_series, n_time = counts.matrix.shape
    # R reports exactly the points we monitor: every series from first_monitored() on.
    expected_rows = {(s, t) for s in range(n_series) for t in range(result.start, n_time)}
    assert set(zip(reference.series.tolist(), reference.time.tolist(), strict=True)) == (
        expected_rows
    )
    assert len(reference.series) == len(expected_rows)
    _assert_matches(result, counts, reference)
    assert result.alpha == (0.025 if method == "C3" else 0.001)


def test_ha_c3_reference_exercises_r_missing_values() -> None:
    """ha has long runs of zero counts: R's C3 gives NA (0/0) there and we must too."""
    counts = _counts("ha.csv")
    reference = _reference("ref_ha_earsC3.csv", counts)
    assert (~reference.defined).sum() > 1000
    assert reference.alarm.sum() > 0
    result = ears(counts.matrix, "C3")
    assert (~result.defined[:, result.start :]).sum() == (~reference.defined).sum()


# --- the package vignette's configurations: salmNewportGermany, ISO year 2011 ----------

VIGNETTE: dict[str, dict[str, Any]] = {
    "default": {},
    "a0.05": {"alpha": 0.05},
    "minSigma1_baseline10": {"min_sigma": 1.0, "baseline": 10},
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("config", sorted(VIGNETTE))
def test_vignette_configurations_match_r(method: Method, config: str) -> None:
    counts = _counts("salmNewportGermany.csv")
    reference = _reference(f"ref_earsC_{method}_{config}_salmNewportGermany2011.csv", counts)
    start = int(reference.time[0])
    assert counts.epochs[start] == "2011-01-03"
    np.testing.assert_array_equal(reference.time, np.arange(start, start + 52))
    result = ears(counts.matrix, method, start=start, **VIGNETTE[config])
    _assert_matches(result, counts, reference)
    assert np.isnan(result.upperbound[:, :start]).all()
    assert not result.defined[:, :start].any()


@pytest.mark.parametrize("method", ["C1", "C2"])
def test_c1_c2_upper_bound_is_expected_plus_z_sd(method: Method) -> None:
    """R reports no expected value; ours is the baseline mean the bound is built on."""
    counts = _counts("ha.csv").matrix
    result = ears(counts, method, alpha=0.05, min_sigma=0.5)
    lag = 0 if method == "C1" else 2
    t = 40
    window = counts[:, t - 7 - lag : t - lag]
    np.testing.assert_allclose(result.expected[:, t], window.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        result.sd[:, t], np.maximum(window.std(axis=1, ddof=1), 0.5), rtol=1e-12
    )
    np.testing.assert_allclose(
        result.upperbound, result.expected + norm.ppf(0.95) * result.sd, rtol=1e-12
    )


# --- C3: R's computation and the documented statistic ----------------------------------


def _spike_series(where: int) -> NDArray[np.float64]:
    counts = np.tile([3.0, 5.0, 4.0, 6.0], 6)
    counts[where] = 60.0
    return counts[np.newaxis, :]


def test_r_c3_ignores_the_current_count_documented_c3_does_not() -> None:
    series = _spike_series(-1)  # only the current (last) point is extreme
    r_c3 = ears(series, "C3")
    documented = ears(series, "C3", c3_variant="documented")
    assert not r_c3.alarm[0, -1]
    assert documented.alarm[0, -1]
    assert documented.statistic[0, -1] > documented.z
    # the same spike two points back: both variants alarm, R's even with a count of 0
    later = _spike_series(-3)
    later[0, -1] = 1.0
    assert ears(later, "C3").alarm[0, -1]
    assert ears(later, "C3", c3_variant="documented").alarm[0, -1]
    assert np.isneginf(ears(later, "C3", c3_variant="documented").upperbound[0, -1])


def test_alpha_defaults_follow_r() -> None:
    series = _spike_series(-1)
    defaults: list[tuple[Method, float]] = [("C1", 0.001), ("C2", 0.001), ("C3", 0.025)]
    for method, alpha in defaults:
        result = ears(series, method)
        assert result.alpha == alpha
        assert result.z == pytest.approx(float(norm.ppf(1 - alpha)), rel=1e-15)


def test_later_start_reports_the_same_values_from_there() -> None:
    counts = _counts("salmonella.agona.csv").matrix
    full = ears(counts, "C2")
    late = ears(counts, "C2", start=100)
    np.testing.assert_array_equal(late.upperbound[:, 100:], full.upperbound[:, 100:])
    assert np.isnan(late.upperbound[:, :100]).all()
    assert first_monitored("C1") == 7
    assert first_monitored("C2") == 9
    assert first_monitored("C3", 10) == 14


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"method": "C4"}, "ears_unknown_method"),
        ({"method": "C3", "c3_variant": "cdc"}, "ears_unknown_c3_variant"),
        ({"method": "C1", "baseline": 2}, "ears_baseline_too_short"),
        ({"method": "C1", "baseline": 7.5}, "ears_baseline_not_integer"),
        ({"method": "C1", "min_sigma": -1.0}, "ears_negative_min_sigma"),
        ({"method": "C1", "alpha": 1.0}, "ears_alpha_out_of_range"),
        ({"method": "C2", "start": 8}, "ears_start_too_early"),
        ({"method": "C1", "start": 24}, "ears_series_too_short"),
    ],
)
def test_refusals_say_why(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(EarsParameterError) as caught:
        ears(_spike_series(0), **kwargs)
    assert caught.value.reason == reason
    assert caught.value.message


def test_refuses_a_single_series_vector_and_infinite_counts() -> None:
    with pytest.raises(EarsParameterError, match="2-D") as caught:
        ears(np.zeros(30), "C1")
    assert caught.value.reason == "ears_not_a_matrix"
    with pytest.raises(EarsParameterError) as caught:
        ears(np.full((1, 30), np.inf), "C1")
    assert caught.value.reason == "ears_infinite_count"


# --- properties ------------------------------------------------------------------------


@st.composite
def _inputs(
    draw: st.DrawFn, methods: tuple[Method, ...] = METHODS
) -> tuple[NDArray[np.float64], dict[str, Any]]:
    method = draw(st.sampled_from(methods))
    baseline = draw(st.integers(3, 10))
    n_series = draw(st.integers(1, 4))
    n_time = draw(st.integers(first_monitored(method, baseline) + 1, 40))
    cells = st.one_of(st.integers(0, 30).map(float), st.just(float("nan")))
    values = draw(st.lists(cells, min_size=n_series * n_time, max_size=n_series * n_time))
    kwargs = {
        "method": method,
        "baseline": baseline,
        "alpha": draw(st.sampled_from([None, 0.05, 0.01])),
        "min_sigma": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "c3_variant": draw(st.sampled_from(VARIANTS)),
    }
    return np.array(values).reshape(n_series, n_time), kwargs


def _naive(counts: NDArray[np.float64], **kwargs: Any) -> NDArray[np.float64]:
    """R's earsC transcribed point by point (and the documented C3): the slow oracle."""
    method, n = kwargs["method"], kwargs["baseline"]
    alpha = kwargs["alpha"] or (0.025 if method == "C3" else 0.001)
    z, floor = float(norm.ppf(1 - alpha)), kwargs["min_sigma"]
    lag = 0 if method == "C1" else 2
    out = np.full(counts.shape, np.nan)

    def stats(y: NDArray[np.float64], t: int) -> tuple[float, float]:
        window = [float(v) for v in y[t - n - lag : t - lag]]
        mean = sum(window) / n
        var = sum((v - mean) ** 2 for v in window) / (n - 1)
        return mean, max(float(np.sqrt(var)), floor) if not np.isnan(var) else float("nan")

    def c2(y: NDArray[np.float64], t: int) -> float:
        mean, sd = stats(y, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(y[t] - mean) / np.float64(sd))

    def excess(value: float) -> float:
        return float("nan") if np.isnan(value) else max(0.0, value - 1)

    for s, y in enumerate(counts):
        for t in range(first_monitored(method, n), len(y)):
            mean, sd = stats(y, t)
            if method != "C3":
                out[s, t] = mean + z * sd
                continue
            previous = sum(excess(c2(y, i)) for i in (t - 2, t - 1))
            with np.errstate(invalid="ignore"):
                if kwargs["c3_variant"] == "r":
                    bound = y[t] + np.float64(sd) * (z - previous)
                    out[s, t] = bound if np.isnan(bound) else max(0.0, bound)
                elif z - previous < 0:
                    out[s, t] = -np.inf
                else:
                    out[s, t] = mean + np.float64(sd) * (1 + z - previous)
    return out


@settings(max_examples=150, deadline=None)
@given(_inputs())
def test_vectorised_equals_the_point_by_point_oracle(
    case: tuple[NDArray[np.float64], dict[str, Any]],
) -> None:
    counts, kwargs = case
    result = ears(counts, **kwargs)
    oracle = _naive(counts, **kwargs)
    np.testing.assert_allclose(result.upperbound, oracle, rtol=1e-9, atol=1e-9)
    with np.errstate(invalid="ignore"):
        clear = np.abs(counts - oracle) > 1e-6  # away from ties, alarms must agree
        oracle_alarm = counts > oracle
    np.testing.assert_array_equal(result.alarm[clear], oracle_alarm[clear])


@settings(max_examples=100, deadline=None)
@given(_inputs())
def test_missing_counts_never_alarm_and_nothing_looks_ahead(
    case: tuple[NDArray[np.float64], dict[str, Any]],
) -> None:
    counts, kwargs = case
    result = ears(counts, **kwargs)
    missing = np.isnan(counts)
    assert not result.alarm[missing].any()
    assert not result.defined[missing].any()
    assert not (result.alarm & ~result.defined).any()
    # blank out everything from a cut on: results before it must not change
    cut = counts.shape[1] - 1
    truncated = counts.copy()
    truncated[:, cut:] = np.nan
    before = ears(truncated, **kwargs)
    np.testing.assert_array_equal(before.upperbound[:, :cut], result.upperbound[:, :cut])
    np.testing.assert_array_equal(before.alarm[:, :cut], result.alarm[:, :cut])


@settings(max_examples=100, deadline=None)
@given(_inputs(), st.sampled_from([0.25, 2.0, 8.0]))
def test_scaling_counts_scales_bounds_and_keeps_alarms(
    case: tuple[NDArray[np.float64], dict[str, Any]], factor: float
) -> None:
    counts, kwargs = case
    kwargs = {**kwargs, "min_sigma": 0.0}  # a fixed floor would not scale
    base = ears(counts, **kwargs)
    scaled = ears(counts * factor, **kwargs)
    np.testing.assert_allclose(scaled.upperbound, base.upperbound * factor, rtol=1e-12)
    np.testing.assert_allclose(scaled.expected, base.expected * factor, rtol=1e-12)
    np.testing.assert_array_equal(scaled.alarm, base.alarm)
    np.testing.assert_array_equal(scaled.defined, base.defined)


@settings(max_examples=60, deadline=None)
@given(_inputs())
def test_all_series_at_once_equals_one_series_at_a_time(
    case: tuple[NDArray[np.float64], dict[str, Any]],
) -> None:
    counts, kwargs = case
    together = ears(counts, **kwargs)
    for s in range(counts.shape[0]):
        alone = ears(counts[s : s + 1], **kwargs)
        for field in ("expected", "sd", "upperbound", "statistic", "alarm", "defined"):
            np.testing.assert_array_equal(
                getattr(alone, field)[0], getattr(together, field)[s], err_msg=field
            )


@settings(max_examples=100, deadline=None)
@given(_inputs(methods=("C3",)))
def test_documented_c3_alarms_exactly_when_its_statistic_exceeds_z(
    case: tuple[NDArray[np.float64], dict[str, Any]],
) -> None:
    counts, kwargs = case
    result = ears(counts, **{**kwargs, "c3_variant": "documented"})
    usable = result.defined & np.isfinite(result.statistic) & (result.sd > 0)
    with np.errstate(invalid="ignore"):
        clear = usable & (np.abs(result.statistic - result.z) > 1e-9)
        np.testing.assert_array_equal(result.alarm[clear], (result.statistic > result.z)[clear])
