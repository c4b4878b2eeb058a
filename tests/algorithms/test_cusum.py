"""CUSUM against R `surveillance` 1.20.3 (``algo.cusum``), point by point, and its properties.

The reference (tests/reference/surveillance/ref_misc_algos_salmonella.agona.csv, see
SOURCES.md there) is ``algo.cusum(salmonella.agona, control = list(range = 200:312))``:
R's defaults k = 1.04, h = 2.26, m = NULL (mean of weeks 1-199), trans = "standard".
We require upper bounds within 1e-4 relative and identical alarms. The properties check
what the reference cannot: the other transformations, missing counts, parameters.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from epibridge.algorithms.cusum import CusumParameterError, Transformation, cusum

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "surveillance"
RTOL = 1e-4


def _agona() -> NDArray[np.float64]:
    with (REFERENCE / "salmonella.agona.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(r["observed1"]) for r in rows]])


def _misc() -> dict[str, NDArray[np.float64]]:
    with (REFERENCE / "ref_misc_algos_salmonella.agona.csv").open(
        newline="", encoding="utf-8"
    ) as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def test_matches_r_on_salmonella_agona() -> None:
    counts, ref = _agona(), _misc()
    start = int(ref["t"][0]) - 1
    np.testing.assert_array_equal(ref["t"] - 1, np.arange(start, counts.shape[1]))
    np.testing.assert_array_equal(counts[0, start:], ref["obs"], err_msg="data misaligned")
    result = cusum(counts, start=start)
    np.testing.assert_allclose(result.upperbound[0, start:], ref["cusum_ub"], rtol=RTOL)
    np.testing.assert_array_equal(result.alarm[0, start:], ref["cusum_alarm"] == 1)
    assert result.alarm.sum() == 10  # the reference has alarms, in runs (no reset)
    assert result.defined[0, start:].all() and not result.defined[0, :start].any()
    np.testing.assert_allclose(result.expected[0, start:], counts[0, :start].mean(), rtol=1e-12)


def test_standard_alarm_is_count_at_or_above_the_bound() -> None:
    counts = _agona()
    result = cusum(counts, start=199)
    at = result.defined
    np.testing.assert_array_equal(result.alarm[at], counts[at] >= result.upperbound[at])


@pytest.mark.parametrize("trans", ["rossi", "anscombe", "pearsonNegBin"])
def test_bound_is_the_count_at_which_the_chart_reaches_h(trans: Transformation) -> None:
    """Continuous transformations: standardising the bound gives exactly h + k - C_{t-1}."""
    counts = _agona()
    start = 199
    result = cusum(counts, start=start, trans=trans, alpha=0.2)
    m = result.expected[0, start]
    previous = np.concatenate([[0.0], result.statistic[0, start:-1]])
    bound = result.upperbound[0, start:]
    x = bound
    if trans == "rossi":
        z = (x - 3 * m + 2 * np.sqrt(x * m)) / (2 * np.sqrt(m))
    elif trans == "anscombe":
        z = 1.5 * (x ** (2 / 3) - m ** (2 / 3)) / m ** (1 / 6)
    else:
        z = (x - m) / np.sqrt(m + 0.2 * m**2)
    positive = bound > 0
    assert positive.sum() > 50
    np.testing.assert_allclose(z[positive], (2.26 + 1.04 - previous)[positive], rtol=1e-9)
    y = counts[0, start:]
    np.testing.assert_array_equal(result.alarm[0, start:], y >= bound - 1e-9)


def test_many_series_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.uniform(1, 9, size=(6, 1)), size=(6, 80)).astype(float)
    together = cusum(counts, start=30, trans="rossi")
    for i in range(counts.shape[0]):
        alone = cusum(counts[i : i + 1], start=30, trans="rossi")
        np.testing.assert_array_equal(alone.upperbound[0], together.upperbound[i])
        np.testing.assert_array_equal(alone.alarm[0], together.alarm[i])


def test_missing_count_is_undefined_and_the_chart_carries_over() -> None:
    counts = _agona()
    gap = counts.copy()
    gap[0, 250] = np.nan
    full, holed = cusum(counts, start=199), cusum(gap, start=199)
    assert not holed.defined[0, 250] and not holed.alarm[0, 250]
    assert np.isnan(holed.upperbound[0, 250]) and np.isnan(holed.statistic[0, 250])
    np.testing.assert_array_equal(holed.upperbound[0, :250], full.upperbound[0, :250])
    # the statistic after the gap continues from the one before it
    expected = max(
        0.0,
        holed.statistic[0, 249]
        + (counts[0, 251] - full.expected[0, 251]) / np.sqrt(full.expected[0, 251])
        - 1.04,
    )
    assert holed.statistic[0, 251] == pytest.approx(expected, rel=1e-12)


def test_missing_history_is_left_out_of_m_and_a_zero_m_is_undefined() -> None:
    counts = np.array([[2.0, np.nan, 4.0, 3.0, 9.0], [0.0, 0.0, 0.0, 1.0, 5.0]])
    result = cusum(counts, start=3)
    assert result.expected[0, 3] == pytest.approx(3.0)
    assert not result.defined[1].any() and not result.alarm[1].any()


def test_given_m_is_used() -> None:
    counts = _agona()
    result = cusum(counts, start=199, m=2.5)
    assert np.all(result.expected[0, 199:] == 2.5)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"trans": "anscombe2nd"}, "cusum_unknown_trans"),
        ({"h": 0.0}, "cusum_bad_kh"),
        ({"start": 0}, "cusum_bad_start"),
        ({"start": 5}, "cusum_bad_start"),
        ({"m": -1.0}, "cusum_bad_m"),
        ({"alpha": -0.1}, "cusum_bad_alpha"),
    ],
)
def test_refusals_say_why(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"start": 2, **kwargs}
    with pytest.raises(CusumParameterError) as info:
        cusum(np.ones((1, 5)), **args)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_refuses_a_non_matrix_and_negative_counts() -> None:
    with pytest.raises(CusumParameterError, match="2-D"):
        cusum(np.ones(5), start=2)
    with pytest.raises(CusumParameterError) as info:
        cusum(-np.ones((1, 5)), start=2)
    assert info.value.reason == "cusum_bad_count"
