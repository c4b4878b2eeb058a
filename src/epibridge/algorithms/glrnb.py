"""Negative binomial GLR detector for an intercept change (Hoehle & Paul 2008), as R's ``glrnb``.

Why this module exists: the hub must raise the same alarms as the field's reference tool,
R's `surveillance` (version 1.20.3), on the same counts, so that any alarm can be checked
in R. This reproduces ``algo.glrnb`` (the function behind ``glrnb()`` for sts objects)
with ``change = "intercept"``, ``dir = "inc"``, ``M = -1`` (no window), ``Mtilde = 1``.

All series are computed at once: ``observed`` is a (series x time) float matrix, NaN for
a missing count. The chart is sequential in time (it restarts after each alarm), so there
is one NumPy step per monitored time point, each over every series and every candidate
change point; there is no loop over series.

What is computed, with monitoring from 0-based column ``start`` (R's ``range[1] - 1``):

1. In-control means mu0 (R's ``mu0 = NULL``): a negative binomial GLM,
   ``y ~ 1 [+ t] + sum_{s=1..S} (cos(2 s pi t / p) + sin(2 s pi t / p))`` with t = 1, 2, ...
   the 1-based time index and p the period (52 for weeks), fitted by ``MASS::glm.nb`` on
   every count before ``start``, predicted for the monitored points. We follow
   ``glm.nb``'s own iteration (a Poisson fit, then alternating ``theta.ml`` and IRLS with
   the theta fixed, stopping when |dloglik| / d1 + |dtheta| < 1e-8), not merely its
   optimum. When ``alpha`` is None (R's ``alpha = NULL``), the dispersion is
   alpha = 1 / theta of that fit; Var(y) = mu + alpha mu^2.
2. At each monitored time n, with the chart last (re)started at s0, the GLR statistic
   ``max_{s0 <= k <= n} l(n, k)``, where
   ``l(n, k) = sum_{i=k..n} kappa y_i + (y_i + 1/alpha) log((1 + alpha mu0_i) /
   (1 + alpha mu0_i e^kappa))`` at kappa = max(0, kappa_hat(k, n)), kappa_hat the maximum
   likelihood estimate of the intercept change from the counts k..n (R's C routine
   ``glr_nb_window`` finds it by Newton's method; the log-likelihood is concave in kappa,
   so ours, a bracketed Newton iteration run to 1e-12, finds the same value).
3. Alarm iff the statistic >= ``c_arl``; the chart then restarts at n + 1 (R re-runs the
   C routine on the remaining counts, keeping mu0 and alpha: ``refit = FALSE``).

R's ``ret = "value"`` puts this statistic into the result's upper bound slot; here it is
``statistic``. R refuses ``ret = "cases"`` for the negative binomial chart; we compute
it anyway as ``upperbound``: the smallest whole count at n for which the statistic would
reach ``c_arl`` (found by an exact search over whole counts; the statistic increases with
y_n). So an alarm is y_n >= upperbound. This field has no R counterpart to be checked
against.

Deliberate differences from R:

* missing counts are left out of the GLM fit (as R's ``glm.nb`` does), and in the chart a
  missing count adds nothing to the sums; the point is undefined (no statistic, no alarm).
  R passes NA to C as a garbage integer;
* ``alpha = 0`` (R switches to the Poisson chart) and ``M``, ``Mtilde``, ``theta``,
  ``dir = "dec"``, ``change = "epi"``, ``refit = TRUE`` are not offered.

References:
    Hoehle M, Paul M (2008). Count data regression charts for the monitoring of
    surveillance time series. Comput Stat Data Anal 52(9): 4357-4368.
    Salmon M, Schumacher D, Hoehle M (2016). Monitoring count time series in R:
    aberration detection in public health surveillance. J Stat Softw 70(10): 1-35.
    Venables WN, Ripley BD (2002). Modern Applied Statistics with S, 4th ed. (glm.nb).
    R package surveillance 1.20.3, R/algo_glrnb.R and src/surveillance.c.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, gammaln, polygamma

from epibridge.algorithms.glm import EPS, EPSILON, MAXIT, fit_log_poisson
from epibridge.algorithms.matrix import count_matrix
from epibridge.model.errors import ReasonedError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: R's algo.glrnb default threshold
DEFAULT_C_ARL: Final = 5.0
#: theta.ml's tolerance in MASS: .Machine$double.eps^0.25
_THETA_EPS: Final = EPS**0.25
#: kappa precision of our Newton iteration (R's C code stops at a 1e-6 step)
_KAPPA_TOL: Final = 1e-12
_KAPPA_MAXIT: Final = 200
#: largest count tried when searching the alarm-raising count
_MAX_CASES: Final = 2**31 - 1


class GlrnbParameterError(ReasonedError, ValueError):
    """A parameter or input the GLR detector cannot use; ``reason`` says which."""


@dataclass(frozen=True, eq=False)
class GlrnbResult:
    """GLR output, every array (series x time) aligned with the input.

    ``expected`` is mu0, ``statistic`` the GLR statistic (R's upper bound with
    ``ret = "value"``), ``upperbound`` the smallest count that would raise an alarm.
    ``alpha`` holds the dispersion used per series (1 / theta when estimated). Columns
    before ``start`` are NaN. ``alarm`` is True where statistic >= c_arl; ``defined`` is
    False where nothing is computed (not monitored, missing count, failed mu0), and
    ``alarm`` is then False.
    """

    c_arl: float
    start: int
    alpha: FloatArray  # (series,)
    expected: FloatArray
    statistic: FloatArray
    upperbound: FloatArray
    alarm: BoolArray
    defined: BoolArray


def glrnb(
    observed: ArrayLike,
    start: int,
    c_arl: float = DEFAULT_C_ARL,
    alpha: float | None = None,
    mu0: ArrayLike | None = None,
    period: int = 52,
    harmonics: int = 1,
    trend: bool = False,
    cases: bool = True,
) -> GlrnbResult:
    """Run the NB GLR intercept chart on every row of ``observed`` (series x time).

    ``start`` is the first monitored 0-based column; ``c_arl`` R's ``c.ARL``; ``alpha``
    the NB dispersion (None: 1/theta of the mu0 fit); ``mu0`` the in-control means for
    every column (series x time; None: fitted as R's ``mu0 = list(S = harmonics,
    trend = trend)``); ``cases=False`` skips the (costlier) alarm-raising count.
    """
    counts = _as_matrix(observed)
    n_series, n_time = counts.shape
    _check(start, n_time, c_arl, alpha, period, harmonics)
    if mu0 is None:
        means, theta = fit_mu0(counts, start, period, harmonics, trend)
    else:
        means = _given_mu0(mu0, counts.shape)
        theta = np.full(n_series, np.nan)
    disp = np.full(n_series, float(alpha)) if alpha is not None else 1.0 / theta
    usable = np.isfinite(disp) & (disp > 0)

    x = counts[:, start:]
    mu = means[:, start:]
    ok = usable[:, None] & np.isfinite(mu) & (mu > 0)
    present = ok & ~np.isnan(x)
    xs = np.where(present, x, 0.0)
    mus = np.where(ok, mu, 1.0)
    a = np.where(usable, disp, 1.0)

    n_mon = x.shape[1]
    statistic = np.full((n_series, n_mon), np.nan)
    bound = np.full((n_series, n_mon), np.nan)
    alarm = np.zeros((n_series, n_mon), dtype=np.bool_)
    restart = np.zeros(n_series, dtype=np.intp)
    for n in range(n_mon):
        # the current point always enters (its count is replaced when searching the bound)
        entering = present[:, : n + 1].copy()
        entering[:, n] = ok[:, n]
        valid = _valid(restart, entering)
        value = _glr(xs[:, : n + 1], mus[:, : n + 1], a, valid)
        if cases:
            bound[:, n] = _cases(xs[:, : n + 1], mus[:, : n + 1], a, valid, c_arl)
        statistic[:, n] = np.where(present[:, n], value, np.nan)
        fired = present[:, n] & (value >= c_arl)
        alarm[:, n] = fired
        restart = np.where(fired, n + 1, restart)

    defined = np.zeros(counts.shape, dtype=np.bool_)
    defined[:, start:] = present
    return GlrnbResult(
        c_arl=float(c_arl),
        start=start,
        alpha=np.where(usable, disp, np.nan),
        expected=_pad(np.where(ok, mu, np.nan), start, n_time),
        statistic=_pad(statistic, start, n_time),
        upperbound=_pad(np.where(present, bound, np.nan), start, n_time),
        alarm=np.concatenate([np.zeros((n_series, start), dtype=np.bool_), alarm], axis=1),
        defined=defined,
    )


# --------------------------------------------------------------------------- GLR statistic


def _valid(restart: NDArray[np.intp], present: BoolArray) -> BoolArray:
    """(series, k, i): count i enters l(n, k) — i >= k >= the chart's last restart."""
    width = present.shape[1]
    idx = np.arange(width)
    lower = idx[None, :, None] <= idx[None, None, :]
    since = idx[None, :, None] >= restart[:, None, None]
    return np.asarray(lower & since & present[:, None, :], dtype=np.bool_)


def _glr(x: FloatArray, mu: FloatArray, alpha: FloatArray, valid: BoolArray) -> FloatArray:
    """max over k of l(n, k) at kappa = max(0, kappa_hat); 0 when no k is valid."""
    a = alpha[:, None, None]
    xi = x[:, None, :]
    mi = mu[:, None, :]
    kappa = _kappa_hat(xi, mi, a, valid)
    # A very large kappa (counts far above a near-zero in-control mean) overflows exp to
    # inf: that k's log-likelihood is then -inf and the maximum over k takes another.
    with np.errstate(over="ignore", invalid="ignore"):
        ek = np.exp(kappa)[..., None]
        terms = kappa[..., None] * xi + (xi + 1.0 / a) * (np.log1p(a * mi) - np.log1p(a * mi * ek))
    lnk = np.sum(np.where(valid, terms, 0.0), axis=2)
    return np.asarray(np.max(lnk, axis=1), dtype=np.float64)


def _kappa_hat(x: FloatArray, mu: FloatArray, a: FloatArray, valid: BoolArray) -> FloatArray:
    """max(0, MLE of kappa) for every (series, k); bracketed Newton on the concave loglik."""

    def score_info(kappa: FloatArray) -> tuple[FloatArray, FloatArray]:
        # While bracketing, kappa may double past where exp overflows: the score is then
        # not positive (NaN or negative), which moves the bracket's upper end down.
        with np.errstate(over="ignore", invalid="ignore"):
            em = np.exp(kappa)[..., None] * mu
            denom = 1.0 + a * em
            score = np.sum(np.where(valid, (x - em) / denom, 0.0), axis=2)
            info = np.sum(np.where(valid, em * (a * x + 1.0) / denom**2, 0.0), axis=2)
        return score, info

    shape = valid.shape[:2]
    kappa = np.zeros(shape)
    score, _ = score_info(kappa)
    going = score > 0.0  # else the constrained maximum is kappa = 0
    lo = np.zeros(shape)
    hi = np.full(shape, np.inf)
    for _ in range(_KAPPA_MAXIT):
        if not going.any():
            break
        score, info = score_info(kappa)
        lo = np.where(going & (score > 0.0), kappa, lo)
        hi = np.where(going & (score <= 0.0), kappa, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = kappa + score / info
        inside = np.isfinite(step) & (step > lo) & (step < hi)
        fallback = np.where(np.isfinite(hi), 0.5 * (lo + hi), 2.0 * lo + 1.0)
        new = np.where(inside, step, fallback)
        new = np.where(going, new, kappa)
        going = going & (np.abs(new - kappa) > _KAPPA_TOL)
        kappa = new
    return np.maximum(kappa, 0.0)


def _cases(
    x: FloatArray, mu: FloatArray, alpha: FloatArray, valid: BoolArray, c_arl: float
) -> FloatArray:
    """Smallest whole y_n that makes the statistic at n reach c_arl (y_n's own value unused).

    The statistic increases with y_n, so this is a doubling then bisection search.
    """
    n = x.shape[1] - 1

    def reaches(value: FloatArray) -> BoolArray:
        trial = x.copy()
        trial[:, n] = value
        return np.asarray(_glr(trial, mu, alpha, valid) >= c_arl, dtype=np.bool_)

    zero = np.zeros(x.shape[0])
    at_zero = reaches(zero)
    low = zero.copy()  # the statistic stays below c_arl at low
    high = np.ones(x.shape[0])
    grow = ~at_zero & ~reaches(high)
    while grow.any() and high.max() < _MAX_CASES:
        low = np.where(grow, high, low)
        high = np.where(grow, 2.0 * high, high)
        grow = grow & ~reaches(high)
    open_ = ~at_zero & (high - low > 1.0)
    while open_.any():
        mid = np.where(open_, np.floor((low + high) / 2.0), high)
        hit = reaches(mid)
        high = np.where(open_ & hit, mid, high)
        low = np.where(open_ & ~hit, mid, low)
        open_ = open_ & (high - low > 1.0)
    return np.asarray(np.where(at_zero, 0.0, high), dtype=np.float64)


# ------------------------------------------------------------------------- mu0 by glm.nb


def fit_mu0(
    counts: FloatArray, start: int, period: int = 52, harmonics: int = 1, trend: bool = False
) -> tuple[FloatArray, FloatArray]:
    """mu0 for every column and theta per series, from ``MASS::glm.nb`` on columns < start.

    Columns before ``start`` get fitted values of the same model (predictions); a series
    whose fit fails gets NaN.
    """
    n_series, n_time = counts.shape
    t = np.arange(1, n_time + 1, dtype=np.float64)
    cols = [np.ones(n_time)]
    if trend:
        cols.append(t)
    for s in range(1, harmonics + 1):
        cols += [np.cos(2.0 * s * np.pi / period * t), np.sin(2.0 * s * np.pi / period * t)]
    design_all = np.stack(cols, axis=1)
    design = np.broadcast_to(design_all[:start], (n_series, start, design_all.shape[1]))
    y = counts[:, :start]
    mask = ~np.isnan(y)
    # degenerate series (all zero, Poisson-like) may overflow or divide by zero on the way:
    # they end with a non-finite or non-positive theta and are reported as failed fits
    with np.errstate(all="ignore"):
        coef, theta, ok = _glm_nb(design, np.where(mask, y, 0.0), mask)
        eta = coef @ design_all.T
        mu0 = np.where(ok[:, None], np.exp(eta), np.nan)
    return np.asarray(mu0, dtype=np.float64), np.where(ok, theta, np.nan)


def _glm_nb(
    design: FloatArray, y: FloatArray, mask: BoolArray
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """``MASS::glm.nb`` (log link, unit weights), N fits at once: coef, theta, usable."""
    n_fits, _, n_cols = design.shape
    columns = np.ones((n_fits, n_cols), dtype=np.bool_)
    pois = fit_log_poisson(design, y, mask, columns)
    mu = np.where(mask, pois.mu, 1.0)
    coef = pois.coef
    n_obs = mask.sum(axis=1).astype(np.float64)
    theta = _theta_ml(y, mu, mask, n_obs)
    d1 = np.sqrt(2.0 * np.maximum(1.0, n_obs - n_cols))
    lm = _nb_loglik(y, mu, theta, mask)
    lm0 = lm + 2.0 * d1
    delta = np.ones(n_fits)
    going = np.ones(n_fits, dtype=np.bool_)
    for _ in range(MAXIT):
        going = going & (np.abs(lm0 - lm) / d1 + np.abs(delta) > EPSILON)
        if not going.any():
            break
        new_coef, new_mu = _nb_irls(design, y, mask, np.log(mu), theta)
        new_theta = _theta_ml(y, mu, mask, n_obs)  # glm.nb uses the mu before the refit
        g = going[:, None]
        coef = np.where(g, new_coef, coef)
        mu = np.where(g, new_mu, mu)
        delta = np.where(going, theta - new_theta, delta)
        theta = np.where(going, new_theta, theta)
        lm0 = np.where(going, lm, lm0)
        lm = np.where(going, _nb_loglik(y, mu, theta, mask), lm)
    ok = np.isfinite(theta) & (theta > 0) & np.isfinite(coef).all(axis=1) & (n_obs > n_cols)
    return coef, theta, ok


def _nb_irls(
    design: FloatArray, y: FloatArray, mask: BoolArray, eta0: FloatArray, theta: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """R's ``glm.fit`` with ``negative.binomial(theta)``, log link, from ``etastart``."""
    th = theta[:, None]
    eta = eta0
    mu = np.maximum(np.exp(eta), EPS)
    dev_old = _nb_deviance(y, mu, th, mask)
    coef = np.zeros(design.shape[::2])
    going = np.ones(design.shape[0], dtype=np.bool_)
    xt = design.transpose(0, 2, 1)
    for _ in range(MAXIT):
        mu_eta = np.maximum(np.exp(eta), EPS)
        z = eta + (y - mu) / mu_eta
        w = np.where(mask, mu_eta**2 / (mu + mu**2 / th), 0.0)
        lhs = np.matmul(xt * w[:, None, :], design)
        rhs = np.matmul(xt, (w * z)[..., None])[..., 0]
        try:
            beta = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:  # a degenerate fit among them: least squares
            beta = np.matmul(np.linalg.pinv(lhs), rhs[..., None])[..., 0]
        new_eta = np.matmul(design, beta[..., None])[..., 0]
        g = going[:, None]
        coef = np.where(g, beta, coef)
        eta = np.where(g, new_eta, eta)
        mu = np.where(g, np.maximum(np.exp(eta), EPS), mu)
        dev = _nb_deviance(y, mu, th, mask)
        going = going & ~(np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < EPSILON)
        dev_old = dev
        if not going.any():
            break
    return coef, np.where(mask, mu, 1.0)


def _theta_ml(y: FloatArray, mu: FloatArray, mask: BoolArray, n: FloatArray) -> FloatArray:
    """``MASS::theta.ml`` (limit 25 as glm.nb passes, eps = double.eps^0.25)."""
    t0 = n / np.sum(np.where(mask, (y / mu - 1.0) ** 2, 0.0), axis=1)
    delta = np.ones_like(t0)
    going = np.ones(t0.shape, dtype=np.bool_)
    for _ in range(MAXIT - 1):  # while ((it <- it + 1) < limit && abs(del) > eps)
        going = going & (np.abs(delta) > _THETA_EPS)
        if not going.any():
            break
        t = np.abs(t0)[:, None]
        score = np.sum(
            np.where(
                mask,
                digamma(t + y) - digamma(t) + np.log(t) + 1.0 - np.log(t + mu) - (y + t) / (mu + t),
                0.0,
            ),
            axis=1,
        )
        info = np.sum(
            np.where(
                mask,
                -polygamma(1, t + y)
                + polygamma(1, t)
                - 1.0 / t
                + 2.0 / (mu + t)
                - (y + t) / (mu + t) ** 2,
                0.0,
            ),
            axis=1,
        )
        delta = np.where(going, score / info, delta)
        t0 = np.where(going, np.abs(t0) + delta, t0)
    return np.asarray(t0, dtype=np.float64)


def _nb_loglik(y: FloatArray, mu: FloatArray, theta: FloatArray, mask: BoolArray) -> FloatArray:
    th = theta[:, None]
    term = (
        gammaln(th + y)
        - gammaln(th)
        - gammaln(y + 1.0)
        + th * np.log(th)
        + y * np.log(mu + (y == 0))
        - (th + y) * np.log(th + mu)
    )
    return np.asarray(np.sum(np.where(mask, term, 0.0), axis=1), dtype=np.float64)


def _nb_deviance(y: FloatArray, mu: FloatArray, th: FloatArray, mask: BoolArray) -> FloatArray:
    term = 2.0 * (y * np.log(np.maximum(1.0, y) / mu) - (y + th) * np.log((y + th) / (mu + th)))
    return np.asarray(np.sum(np.where(mask, term, 0.0), axis=1), dtype=np.float64)


# ------------------------------------------------------------------------------ helpers


def _pad(values: FloatArray, start: int, n_time: int) -> FloatArray:
    out = np.full((values.shape[0], n_time), np.nan)
    out[:, start:] = values
    return out


def _given_mu0(mu0: ArrayLike, shape: tuple[int, int]) -> FloatArray:
    try:
        return np.broadcast_to(np.asarray(mu0, dtype=np.float64), shape).copy()
    except (TypeError, ValueError) as exc:
        raise GlrnbParameterError(
            "glrnb_bad_mu0", f"mu0 must be numbers of the counts' shape {shape}: {exc}"
        ) from exc


def _as_matrix(observed: ArrayLike) -> FloatArray:
    counts = count_matrix(observed, "glrnb", GlrnbParameterError)
    finite = counts[~np.isnan(counts)]
    if np.isinf(finite).any() or (finite < 0).any() or (finite != np.round(finite)).any():
        raise GlrnbParameterError(
            "glrnb_bad_count", "observed must hold whole counts >= 0 (NaN marks a missing one)"
        )
    return counts


def _check(
    start: int, n_time: int, c_arl: float, alpha: float | None, period: int, harmonics: int
) -> None:
    if isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise GlrnbParameterError("glrnb_bad_start", f"start must be an integer, not {start!r}")
    if not 1 <= start < n_time:
        raise GlrnbParameterError(
            "glrnb_bad_start",
            f"start must leave earlier points for mu0 and lie within the {n_time} time "
            f"points: 1 <= start < {n_time}, not {start}",
        )
    if not (np.isfinite(c_arl) and c_arl > 0):
        raise GlrnbParameterError("glrnb_bad_c_arl", f"c_arl must be finite and > 0, not {c_arl}")
    if alpha is not None and not (np.isfinite(alpha) and alpha > 0):
        raise GlrnbParameterError(
            "glrnb_bad_alpha",
            f"alpha must be > 0 (alpha = 0 is the Poisson chart, not offered here), not {alpha}",
        )
    if period < 1 or harmonics < 0:
        raise GlrnbParameterError(
            "glrnb_bad_model", f"period must be >= 1 and harmonics >= 0, not {period}, {harmonics}"
        )
