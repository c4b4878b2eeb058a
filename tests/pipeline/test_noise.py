"""Discrete-Laplace noise through OpenDP, and the Chernoff bound on sums of noise.

OpenDP's sampler cannot be seeded, so the distribution is tested statistically on one
large sample. Every tolerance is set so that a false failure is astronomically unlikely
(probabilities below 1e-9 per run, from Hoeffding's inequality or the bound under test),
and each check is shown to reject the distribution of a wrong scale.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import opendp.prelude as dp
import pytest

from epibridge.pipeline import noise
from epibridge.pipeline.noise import MECHANISM, Noised, NoiseError, noise_bound, noisy_counts

EPSILON = 0.5
SCALE = 2.0  # sensitivity 1 / epsilon 0.5, exactly representable
N = 100_000  # above noise.CHUNK: the sample is drawn on the threaded path


def _pmf(scale: float, k: np.ndarray) -> np.ndarray:
    """P(X = k) = tanh(1 / (2 scale)) exp(-|k| / scale), the discrete Laplace."""
    pmf: np.ndarray = math.tanh(0.5 / scale) * np.exp(-np.abs(k) / scale)
    return pmf


def _moments(scale: float) -> tuple[float, float]:
    """Variance (2p / (1-p)^2, p = exp(-1/scale)) and the fourth moment, the latter summed."""
    p = math.exp(-1.0 / scale)
    k = np.arange(-int(80 * scale) - 40, int(80 * scale) + 41)
    return 2 * p / (1 - p) ** 2, float(np.sum(k.astype(float) ** 4 * _pmf(scale, k)))


def _variance_matches(resid: np.ndarray, scale: float) -> bool:
    """mean(X^2) within 12 standard errors of the variance of ``scale``."""
    var, m4 = _moments(scale)
    se = math.sqrt((m4 - var**2) / resid.size)
    return abs(float(np.mean(resid.astype(float) ** 2)) - var) <= 12 * se


def _pmf_matches(resid: np.ndarray, scale: float) -> bool:
    """Frequencies of -3..3 within Hoeffding's bound: all 7 hold except w.p. <= 1e-12."""
    ks = np.arange(-3, 4)
    tol = math.sqrt(math.log(2 * ks.size / 1e-12) / (2 * resid.size))
    freq = np.array([np.mean(resid == k) for k in ks])
    return bool(np.all(np.abs(freq - _pmf(scale, ks)) <= tol))


@pytest.fixture(scope="module")
def drawn() -> tuple[np.ndarray, Noised]:
    counts = (np.arange(N) % 37).astype(np.int64)
    return counts, noisy_counts(counts, EPSILON)


def test_result_describes_the_mechanism(drawn: tuple[np.ndarray, Noised]) -> None:
    counts, noised = drawn
    assert noised.values.shape == counts.shape
    assert noised.values.dtype == np.int64
    assert noised.epsilon == EPSILON
    assert noised.scale == SCALE
    assert noised.mechanism == MECHANISM
    # negative noisy counts are returned as drawn, not clamped
    assert (noised.values < 0).any()


def test_noise_has_mean_zero(drawn: tuple[np.ndarray, Noised]) -> None:
    counts, noised = drawn
    resid = noised.values - counts
    bound = noise_bound(SCALE, N, failure=1e-12)
    assert abs(int(resid.sum())) <= bound
    # an off-by-one (noise added to counts + 1) would fail it: N is far above the bound
    assert abs(int((resid + 1).sum())) > bound


def test_noise_variance_matches_the_scale(drawn: tuple[np.ndarray, Noised]) -> None:
    counts, noised = drawn
    resid = noised.values - counts
    assert _variance_matches(resid, SCALE)
    assert not _variance_matches(resid, SCALE * 1.25)
    assert not _variance_matches(resid, SCALE * 0.8)


def test_noise_distribution_matches_the_scale(drawn: tuple[np.ndarray, Noised]) -> None:
    counts, noised = drawn
    resid = noised.values - counts
    assert _pmf_matches(resid, SCALE)
    assert not _pmf_matches(resid, SCALE * 1.25)
    assert not _pmf_matches(resid, SCALE * 0.8)


def test_noise_bound_holds_on_draws(drawn: tuple[np.ndarray, Noised]) -> None:
    counts, noised = drawn
    sums = (noised.values - counts).reshape(2000, 50).sum(axis=1)
    # 2000 sums, each beyond the bound with probability <= 1e-12
    assert int(np.abs(sums).max()) <= noise_bound(SCALE, 50, failure=1e-12)


@pytest.mark.parametrize("scale", [0.5, 2.0, 10.0])
@pytest.mark.parametrize("n", [1, 5, 20])
@pytest.mark.parametrize("failure", [1e-3, 1e-9])
def test_noise_bound_against_the_exact_distribution(scale: float, n: int, failure: float) -> None:
    # The exact distribution of the sum of n noises, by convolution of the pmf (truncated
    # where the lost mass is below 1e-15).
    half = int(40 * scale) + 40
    pmf = _pmf(scale, np.arange(-half, half + 1))
    dist = np.array([1.0])
    for _ in range(n):
        dist = np.convolve(dist, pmf)
    support = np.abs(np.arange(-n * half, n * half + 1))
    bound = noise_bound(scale, n, failure)
    assert dist[support > bound].sum() <= failure  # the bound holds
    tails = np.array([dist[support > q].sum() for q in range(n * half)])
    exact = int(np.argmax(tails <= failure))  # the smallest q with P(|S| > q) <= failure
    assert bound <= 1.7 * exact + 1  # and is not loose


def test_noise_bound_grows_like_the_square_root_of_n() -> None:
    assert noise_bound(SCALE, 40_000) / noise_bound(SCALE, 10_000) == pytest.approx(2, rel=1e-3)
    # and tends to the Gaussian-tail value sqrt(2 n var log(2 / failure))
    var, _ = _moments(SCALE)
    gauss = math.sqrt(2 * 10**6 * var * math.log(2 / 1e-9))
    assert noise_bound(SCALE, 10**6) == pytest.approx(gauss, rel=1e-3)
    assert noise_bound(SCALE, 0) == 0.0


@pytest.mark.parametrize(
    ("scale", "n", "failure", "message"),
    [
        (0.0, 1, 1e-9, "scale"),
        (float("nan"), 1, 1e-9, "scale"),
        (1.0, -1, 1e-9, "n must"),
        (1.0, 1, 0.0, "failure"),
        (1.0, 1, 1.0, "failure"),
    ],
)
def test_noise_bound_validation(scale: float, n: int, failure: float, message: str) -> None:
    with pytest.raises(NoiseError, match=message):
        noise_bound(scale, n, failure)


@pytest.mark.parametrize(("epsilon", "sensitivity"), [(0.7, 1), (1 / 3, 2), (0.3, 3), (0.1, 1)])
def test_opendp_proves_the_epsilon(epsilon: float, sensitivity: int) -> None:
    # 0.7, 1/3 and (0.3, 3) are cases where sensitivity / epsilon as a float is one ulp too
    # small for OpenDP's map; the scale is nudged up until the proof holds.
    noised = noisy_counts(np.array([3, 0, 9]), epsilon, sensitivity=sensitivity)
    assert sensitivity / epsilon <= noised.scale <= (sensitivity / epsilon) * (1 + 1e-15)
    check: Any = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=noised.scale
    )
    assert check.map(sensitivity) <= epsilon
    naive: Any = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.l1_distance(T="i64"),
        scale=sensitivity / epsilon,
    )
    if epsilon != 0.1:
        assert naive.map(sensitivity) > epsilon  # the nudge was needed


def test_sensitivity_scales_the_noise() -> None:
    assert noisy_counts(np.array([1, 2]), 1.5, sensitivity=3).scale == pytest.approx(2.0)


def test_shape_dtype_and_order_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # Noise of scale 0.05 is non-zero with probability ~4e-9 per cell, so every value
    # must stay within far less than 10^6 of its own count: chunks come back in order.
    monkeypatch.setattr(noise, "CHUNK", 7)
    counts = (np.arange(120, dtype=np.int32) * 1_000_000).reshape(3, 40)
    noised = noisy_counts(counts, 20.0)
    assert noised.values.shape == (3, 40)
    assert noised.values.dtype == np.int64
    assert np.all(np.abs(noised.values - counts) < 500_000)
    empty = noisy_counts(np.zeros((0, 4), dtype=np.int64), 1.0)
    assert empty.values.shape == (0, 4)
    assert empty.values.dtype == np.int64


@pytest.mark.parametrize(
    ("epsilon", "message"),
    [
        (0.0, "positive finite"),
        (-1.0, "positive finite"),
        (float("nan"), "positive finite"),
        (float("inf"), "positive finite"),
        (True, "must be a number"),
        ("0.5", "must be a number"),
        (1e-20, "beyond what 64-bit counts can carry"),
    ],
)
def test_epsilon_is_validated(epsilon: float, message: str) -> None:
    with pytest.raises(NoiseError, match=message):
        noisy_counts(np.array([1, 2, 3]), epsilon)


def test_counts_and_sensitivity_are_validated() -> None:
    with pytest.raises(NoiseError, match="must not be negative; found -2"):
        noisy_counts(np.array([1, -2, 3]), 1.0)
    with pytest.raises(NoiseError, match="whole numbers"):
        noisy_counts(np.array([1.0, 2.5]), 1.0)
    with pytest.raises(NoiseError, match="sensitivity must be at least 1"):
        noisy_counts(np.array([1, 2]), 1.0, sensitivity=0)
