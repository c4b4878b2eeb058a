"""NB GLR intercept chart against R `surveillance` 1.20.3 (``algo.glrnb``), and its properties.

The reference (tests/reference/surveillance/ref_misc_algos_salmonella.agona.csv, see
SOURCES.md there) is ``algo.glrnb(salmonella.agona, control = list(range = 200:312,
c.ARL = 5, alpha = NULL, ret = "value"))$upperbound``: the GLR statistic, with mu0 from
R's ``glm.nb`` fit on weeks 1-199 (one harmonic, no trend) and alpha = 1/theta of that
fit. We require the statistic within 1e-4 relative (R's zeros exactly). R's alarms are
where that statistic reaches c.ARL (the chart restarts there). The properties check what
the reference cannot: the restart, the alarm-raising count, missing counts, parameters.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from epibridge.algorithms.glrnb import GlrnbParameterError, GlrnbResult, glrnb

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "surveillance"
RTOL = 1e-4
START = 199  # R's range 200:312


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


@pytest.fixture(scope="module")
def agona_result() -> GlrnbResult:
    return glrnb(_agona(), start=START)


def test_statistic_matches_r_on_salmonella_agona(agona_result: GlrnbResult) -> None:
    counts, ref = _agona(), _misc()
    np.testing.assert_array_equal(ref["t"] - 1, np.arange(START, counts.shape[1]))
    np.testing.assert_array_equal(counts[0, START:], ref["obs"], err_msg="data misaligned")
    result = glrnb(counts, start=START, cases=False)
    ours = result.statistic[0, START:]
    np.testing.assert_allclose(ours, ref["glrnb_val"], rtol=RTOL, atol=1e-12)
    assert (ref["glrnb_val"] == 0).sum() > 20  # R's exact zeros (kappa_hat <= 0) are ours
    np.testing.assert_array_equal(ours == 0, ref["glrnb_val"] == 0)
    # R's alarms: the statistic reaching c.ARL = 5, here weeks 263 and 264 (1-based)
    np.testing.assert_array_equal(result.alarm[0, START:], ref["glrnb_val"] >= 5)
    assert (np.flatnonzero(result.alarm[0]) + 1).tolist() == [263, 264]
    assert result.defined[0, START:].all() and not result.defined[0, :START].any()
    assert 0.1 < result.alpha[0] < 1.0


def test_chart_restarts_after_an_alarm() -> None:
    """After the alarm at week 263 the statistic at 264 uses week 264 alone."""
    counts = _agona()
    result = glrnb(counts, start=START, cases=False)
    n = 263  # 0-based week 264
    assert result.alarm[0, n - 1]
    x, mu, a = counts[0, n], result.expected[0, n], result.alpha[0]
    kappa = max(0.0, np.log(x / mu))  # single count: the MLE solves x = e^kappa mu
    single = kappa * x + (x + 1 / a) * np.log((1 + a * mu) / (1 + a * mu * np.exp(kappa)))
    assert result.statistic[0, n] == pytest.approx(single, rel=1e-10)


def test_upperbound_is_the_smallest_alarming_count(agona_result: GlrnbResult) -> None:
    counts = _agona()
    result = agona_result
    at = result.defined
    bound = result.upperbound
    np.testing.assert_array_equal(result.alarm[at], counts[at] >= bound[at])
    for n in (210, 240, 262):  # bound reached at U, not at U - 1
        for value, fires in ((bound[0, n], True), (bound[0, n] - 1, False)):
            trial = counts[:, : n + 1].copy()
            trial[0, n] = value
            again = glrnb(trial, start=START, cases=False)
            assert bool(again.statistic[0, n] >= 5) is fires


def test_given_mu0_and_alpha_skip_the_fit() -> None:
    counts = _agona()[:, :260]
    result = glrnb(counts, start=START, mu0=np.full(counts.shape, 2.0), alpha=0.5, cases=False)
    assert result.alpha[0] == 0.5
    np.testing.assert_array_equal(result.expected[0, START:], 2.0)


def test_many_series_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(110)
    rate = 3 + 2 * np.sin(2 * np.pi * t / 52)
    counts = rng.negative_binomial(4, 4 / (4 + rate * rng.uniform(0.5, 2, (3, 1)))).astype(float)
    counts[1, 90:94] += 15
    together = glrnb(counts, start=80)
    for i in range(3):
        alone = glrnb(counts[i : i + 1], start=80)
        np.testing.assert_allclose(alone.statistic[0], together.statistic[i], rtol=1e-12)
        np.testing.assert_array_equal(alone.upperbound[0], together.upperbound[i])
        np.testing.assert_array_equal(alone.alarm[0], together.alarm[i])
    assert together.alarm[1, 90:95].any()


def test_missing_count_is_undefined_and_left_out() -> None:
    counts = _agona()[:, :240]
    holed = counts.copy()
    holed[0, 220] = np.nan
    holed[0, 50] = np.nan  # in the fit's history: left out of glm.nb, as R's na.omit
    result = glrnb(holed, start=START, cases=False)
    assert not result.defined[0, 220] and np.isnan(result.statistic[0, 220])
    assert result.defined[0, 221:].all() and np.isfinite(result.statistic[0, 221:]).all()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"start": 0}, "glrnb_bad_start"),
        ({"c_arl": 0.0}, "glrnb_bad_c_arl"),
        ({"alpha": 0.0}, "glrnb_bad_alpha"),
        ({"harmonics": -1}, "glrnb_bad_model"),
        ({"mu0": "x"}, "glrnb_bad_mu0"),
    ],
)
def test_refusals_say_why(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"start": 30, **kwargs}
    with pytest.raises(GlrnbParameterError) as info:
        glrnb(np.ones((1, 40)), **args)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_refuses_fractional_or_negative_counts() -> None:
    for bad in (np.full((1, 40), 1.5), -np.ones((1, 40))):
        with pytest.raises(GlrnbParameterError) as info:
            glrnb(bad, start=30)
        assert info.value.reason == "glrnb_bad_count"


def test_a_series_whose_mu0_cannot_be_fitted_is_undefined() -> None:
    """All zeros before start: glm.nb has no finite optimum; the other series are unaffected."""
    rng = np.random.default_rng(1)
    counts = np.vstack([np.zeros(80), rng.poisson(4, 80).astype(float)])
    result = glrnb(counts, start=60)
    assert np.isnan(result.alpha[0]) and not result.defined[0].any()
    assert not result.alarm[0].any()
    assert result.defined[1, 60:].all()
