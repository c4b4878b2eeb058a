"""Intervals of reported and corrected counts (algorithms/burden.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from epibridge.algorithms.burden import corrected_interval, log_sigma, poisson_interval, z_value


def test_the_reported_interval_is_garwoods_exact_poisson_interval() -> None:
    x = np.array([0.0, 1.0, 4.0, 37.0, 1200.0])
    low, high = poisson_interval(x)
    expected_low = np.where(x > 0, chi2.ppf(0.025, 2 * np.maximum(x, 1)) / 2, 0.0)
    expected_high = chi2.ppf(0.975, 2 * x + 2) / 2
    np.testing.assert_allclose(low, expected_low, rtol=1e-10)
    np.testing.assert_allclose(high, expected_high, rtol=1e-10)
    assert high[0] == pytest.approx(3.689, abs=1e-3)  # the textbook upper bound for 0


def test_an_exact_factor_scales_the_reported_interval() -> None:
    x = np.array([0.0, 2.0, 15.0, 400.0])
    low, high = corrected_interval(x, np.full(4, 7.6), np.zeros(4))
    p_low, p_high = poisson_interval(x)
    np.testing.assert_allclose(low, 7.6 * p_low, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(high, 7.6 * p_high, rtol=1e-7)


@pytest.mark.parametrize(
    ("cases", "sigma"), [(1, 0.05), (3, 0.8), (12, 0.3), (80, 0.02), (80, 0.5), (3000, 0.1)]
)
def test_the_corrected_interval_matches_a_monte_carlo_simulation(cases: int, sigma: float) -> None:
    rng = np.random.default_rng(cases * 1000 + int(sigma * 100))
    n = 400_000
    factor = np.exp(sigma * rng.standard_normal(n)) * 5.0
    mc_low = np.quantile(rng.gamma(cases, 1.0, n) * factor * 2.0, 0.025)
    mc_high = np.quantile(rng.gamma(cases + 1, 1.0, n) * factor * 2.0, 0.975)
    low, high = corrected_interval(
        np.array([float(cases)]), np.array([5.0]), np.array([sigma]), np.array([2.0])
    )
    assert low[0] == pytest.approx(mc_low, rel=0.02)
    assert high[0] == pytest.approx(mc_high, rel=0.02)
    assert low[0] < cases * 10.0 < high[0]


def test_unknown_counts_have_no_interval_and_zero_has_a_zero_lower_bound() -> None:
    low, high = corrected_interval(
        np.array([np.nan, 0.0]), np.array([9.1, 9.1]), np.array([0.4, 0.4])
    )
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert low[1] == 0.0 and high[1] > 3.689 * 9.1  # wider than the exact-factor bound


def test_log_sigma_covers_the_wider_side_of_a_published_interval() -> None:
    sigma = log_sigma(9.1, 6.6, 29.2)
    assert sigma == pytest.approx(math.log(29.2 / 9.1) / z_value(0.95))
    assert math.exp(math.log(9.1) - 1.96 * sigma) < 6.6
    with pytest.raises(ValueError, match="low <= factor <= high"):
        log_sigma(5.0, 6.0, 8.0)


@pytest.mark.parametrize("p", [0.025, 0.975])
def test_the_expansion_for_large_counts_agrees_with_the_quadrature(p: float) -> None:
    from epibridge.algorithms.burden import _cornish_fisher, _quadrature

    shapes = np.repeat([40.0, 55.0, 400.0, 5000.0], 4)
    sigmas = np.tile([0.002, 0.05, 0.3, 1.0], 4)
    np.testing.assert_allclose(
        _cornish_fisher(shapes, sigmas, p), _quadrature(shapes, sigmas, p), rtol=1e-4
    )
