"""The fast arithmetic of the batched GLM and of EARS equals the plain computation.

The GLM (algorithms/glm.py) reorganises R's IRLS for speed: Newton-form steps, a
deviance without logarithms, scalar iterations for fits whose linear predictor is
constant, shared design matrices. Here it is checked against a literal, one-fit-at-a-time
transcription of R's ``glm.fit`` loop (working response, weighted least squares, deviance
from ``dev.resids``), on fits that exercise each path. EARS computes window statistics by
exact running sums for whole-number counts; they are checked against NumPy's two-pass
mean and sd over every window, for small, large, fractional and missing counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from epibridge.algorithms.ears import ears, first_monitored
from epibridge.algorithms.glm import (
    EPS,
    SharedDesign,
    fit_log_poisson,
    fit_log_poisson_shared,
    hat_values,
    hat_values_shared,
)

FloatArray = NDArray[np.float64]


# --- the GLM ---------------------------------------------------------------------------


def _r_glm_fit(
    x: FloatArray, y: FloatArray, prior: FloatArray, offset: FloatArray, maxit: int = 25
) -> tuple[FloatArray, FloatArray, FloatArray, bool]:
    """R's glm.fit loop for one quasi-Poisson log-link fit, transcribed literally:
    coefficients, working weights and (X'WX)^-1 of the last solve, converged."""
    mu = y + 0.1
    eta = np.log(mu)

    def deviance(mu: FloatArray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
        return float(np.sum(2.0 * prior * terms))

    dev_old = deviance(mu)
    coef = np.zeros(x.shape[1])
    for _ in range(maxit):
        mu_eta = np.maximum(np.exp(eta), EPS)
        z = eta - offset + (y - mu) / mu_eta
        w = prior * mu_eta**2 / mu
        normal = x.T @ (w[:, None] * x)
        coef = np.linalg.solve(normal, x.T @ (w * z))
        eta = x @ coef + offset
        mu = np.maximum(np.exp(eta), EPS)
        dev = deviance(mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < 1e-8:
            return coef, w, np.linalg.inv(normal), True
        dev_old = dev
    return coef, w, np.linalg.inv(normal), False


def _problems(seed: int) -> list[tuple[FloatArray, FloatArray, bool, bool, bool]]:
    """(y, prior, trend, with offset, zero offset) for fits that take every path."""
    rng = np.random.default_rng(seed)
    n = 21
    out = []
    for k in range(24):
        kind = k % 6
        if kind == 0:  # all zero: the scalar path, with and without the trend
            y = np.zeros(n)
        elif kind == 1:  # sparse counts
            y = ((rng.random(n) < 0.15) * rng.integers(1, 4, n)).astype(np.float64)
        elif kind == 2:  # large counts
            y = rng.poisson(rng.uniform(50, 500), n).astype(np.float64)
        else:
            y = rng.poisson(rng.uniform(0.5, 10) * np.exp(0.02 * np.arange(n))).astype(np.float64)
        prior = np.ones(n) if k % 4 else rng.uniform(0.2, 2.0, n)
        out.append((y, prior, bool(k % 2), kind == 4, kind == 5))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_batched_fit_equals_r_glm_fit_one_at_a_time(seed: int) -> None:
    problems = _problems(seed)
    n = len(problems[0][0])
    t = np.arange(n, dtype=np.float64) - n
    x = np.stack([np.ones(n), t], axis=1)
    rng = np.random.default_rng(seed)
    y = np.stack([p[0] for p in problems])
    prior = np.stack([p[1] for p in problems])
    columns = np.array([[True, p[2]] for p in problems])
    offset = np.stack(
        [
            rng.normal(0, 0.3, n) if p[3] else np.zeros(n)  # zero offset: the general path
            for p in problems
        ]
    )
    mask = np.ones_like(y, dtype=np.bool_)
    design = np.broadcast_to(x, (len(problems), n, 2))
    shared = SharedDesign.of(design)
    plain = fit_log_poisson_shared(shared, y, mask, columns, prior_weights=prior)
    with_offset = fit_log_poisson_shared(
        shared, y, mask, columns, prior_weights=prior, offset=offset
    )
    for i, (_, _, trend, has_offset, zero_offset) in enumerate(problems):
        fit = with_offset if (has_offset or zero_offset) else plain
        used = x[:, : 1 + int(trend)]
        off = offset[i] if (has_offset or zero_offset) else np.zeros(n)
        coef, w, cov, converged = _r_glm_fit(used, y[i], prior[i], off)
        assert fit.converged[i] == converged, i
        np.testing.assert_allclose(fit.coef[i, : used.shape[1]], coef, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fit.working_weights[i], w, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(
            fit.cov_unscaled[i, : used.shape[1], : used.shape[1]], cov, rtol=1e-8
        )
        if not trend:
            assert fit.coef[i, 1] == 0.0 and fit.cov_unscaled[i, 1, 1] == 0.0


def test_a_fit_does_not_depend_on_the_other_fits_in_its_batch() -> None:
    """Exactly the same numbers alone and in any batch (sums in a fixed order)."""
    problems = _problems(3)
    n = len(problems[0][0])
    y = np.stack([p[0] for p in problems])
    prior = np.stack([p[1] for p in problems])
    columns = np.array([[True, p[2]] for p in problems])
    mask = np.ones_like(y, dtype=np.bool_)
    mask[::5, 3] = False  # a missing count now and then
    levels = np.stack([np.ones(n), np.arange(n) - n / 2.0], axis=1)
    matrices = np.stack([levels, levels * [1.0, 0.5]])  # two distinct designs
    group = np.arange(len(problems)) % 2
    together = fit_log_poisson_shared(
        SharedDesign(matrices, group), y, mask, columns, prior_weights=prior
    )
    hats = hat_values_shared(together, SharedDesign(matrices, group), mask, columns)
    for i in (0, 1, 7, 11, 22):
        alone = fit_log_poisson_shared(
            SharedDesign(matrices, group[i : i + 1]),
            y[i : i + 1],
            mask[i : i + 1],
            columns[i : i + 1],
            prior_weights=prior[i : i + 1],
        )
        for name in ("coef", "mu", "working_weights", "cov_unscaled", "converged"):
            np.testing.assert_array_equal(
                getattr(alone, name)[0], getattr(together, name)[i], err_msg=name
            )
        hat = hat_values_shared(
            alone, SharedDesign(matrices, group[i : i + 1]), mask[i : i + 1], columns[i : i + 1]
        )
        np.testing.assert_array_equal(hat[0], hats[i])


def test_fast_fitter_equals_the_plain_one() -> None:
    """fit_log_poisson_shared against fit_log_poisson (R's loop written out), with missing
    counts, prior weights and offsets."""
    rng = np.random.default_rng(4)
    problems = _problems(4) + _problems(5)
    n = len(problems[0][0])
    y = np.stack([p[0] for p in problems])
    prior = np.stack([p[1] for p in problems])
    columns = np.array([[True, p[2]] for p in problems])
    mask = rng.random(y.shape) > 0.1
    offset = rng.normal(0.0, 0.2, y.shape)
    x = np.broadcast_to(np.stack([np.ones(n), np.arange(n) / 7.0], axis=1), (len(y), n, 2))
    for off in (None, offset):
        fast = fit_log_poisson_shared(
            SharedDesign.of(x), y, mask, columns, prior_weights=prior, offset=off
        )
        plain = fit_log_poisson(x, y, mask, columns, prior_weights=prior, offset=off)
        np.testing.assert_array_equal(fast.converged, plain.converged)
        np.testing.assert_allclose(fast.coef, plain.coef, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fast.mu[mask], plain.mu[mask], rtol=1e-9)
        np.testing.assert_allclose(fast.working_weights, plain.working_weights, rtol=1e-9)
        np.testing.assert_allclose(fast.cov_unscaled, plain.cov_unscaled, rtol=1e-8, atol=0)
        np.testing.assert_allclose(
            hat_values(fast, x, mask, columns),
            hat_values(plain, x, mask, columns),
            rtol=1e-8,
            atol=1e-15,
        )


# --- EARS window statistics ---------------------------------------------------------------


def _counts(kind: str, rng: np.random.Generator) -> FloatArray:
    shape = (4, 90)
    if kind == "small":
        return rng.poisson(3.0, shape).astype(np.float64)
    if kind == "large":  # exact running sums (all below 2^53)
        return rng.poisson(1e6, shape).astype(np.float64)
    if kind == "huge":  # sums of squares beyond 2^53: the two-pass fallback
        return rng.poisson(1e6, shape).astype(np.float64) + float(rng.integers(2**35, 2**36))
    if kind == "fractional":  # large mean, tiny spread: the one-pass formula would fail
        return rng.normal(1e6, 0.5, shape)
    counts = rng.poisson(4.0, shape).astype(np.float64)
    counts[rng.random(shape) < 0.05] = np.nan
    return counts


@pytest.mark.parametrize("kind", ["small", "large", "huge", "fractional", "missing"])
@pytest.mark.parametrize("method", ["C1", "C2", "C3"])
@pytest.mark.parametrize("baseline", [3, 7, 12])
def test_ears_window_statistics_are_numpy_two_pass_mean_and_sd(
    kind: str, method: str, baseline: int
) -> None:
    counts = _counts(kind, np.random.default_rng(baseline))
    counts[1, 20:40] = counts[1, 20]  # constant windows: sd exactly 0
    result = ears(counts, method, baseline=baseline)  # type: ignore[arg-type]
    guard = 0 if method == "C1" else 2
    start = first_monitored(method, baseline)  # type: ignore[arg-type]
    windows = sliding_window_view(counts, baseline, axis=1)
    # the window of t starts at t - guard - baseline
    chosen = windows[:, start - guard - baseline : counts.shape[1] - guard - baseline]
    mean = chosen.mean(axis=-1)
    sd = chosen.std(axis=-1, ddof=1)
    np.testing.assert_allclose(result.expected[:, start:], mean, rtol=1e-12)
    np.testing.assert_allclose(result.sd[:, start:], sd, rtol=1e-12)
    assert np.isnan(result.expected[:, :start]).all()
    if method != "C3":
        np.testing.assert_allclose(result.upperbound[:, start:], mean + result.z * sd, rtol=1e-12)
        missing = np.isnan(counts[:, start:]) | np.isnan(mean)
        np.testing.assert_array_equal(result.defined[:, start:], ~missing)
