"""Nowcasting: how many cases with onset in the last few weeks will eventually be reported.

Why this module exists: cases are reported days or weeks after their onset, so the most
recent onset weeks of any line list are incomplete and a naive epidemic curve always
seems to fall at its end. A nowcast corrects the recent weeks for the cases not reported
yet, with a prediction interval, from the reporting triangle n[t, d] = cases with onset
in week t reported d weeks later (d = 0 .. D).

Method: the Bayesian nowcast of Hoehle & an der Heiden (2014) with the delay distribution
estimated from the last ``window`` *complete* onset weeks, in closed form (no sampling):

* Delay distribution. Each case's delay is an independent draw from pi = (pi_0 .. pi_D).
  Onset weeks t <= now - D are complete (every delay up to D is observed). With a
  Dirichlet(kappa, ..., kappa) prior and c_d = cases with delay d among the ``window``
  complete onset weeks now-D-window+1 .. now-D, the posterior is
  Dirichlet(kappa + c_0, ..., kappa + c_D); the fraction reported within k weeks,
  F(k) = pi_0 + ... + pi_k, is then exactly Beta(a_k, b_k) with
  a_k = sum_{d<=k} (kappa + c_d) and b_k = sum_{d>k} (kappa + c_d).
* Counts. N_t ~ Poisson(lambda_t) with the (improper) prior lambda_t ~ Gamma(alpha0, 0),
  i.e. density proportional to lambda^(alpha0 - 1) (alpha0 = 1/2 is Jeffreys' prior).
  Of the N_t cases, x_t have been reported by ``now`` (delay <= k = now - t): given F(k)
  = p, x_t ~ Poisson(lambda_t p) and the not-yet-reported Y_t = N_t - x_t is, given x_t
  and p, negative binomial with size alpha0 + x_t and success probability p.
* Predictive. Integrating p over its Beta posterior, Y_t follows the beta negative
  binomial distribution BNB(r = alpha0 + x_t, a_k, b_k):
  P(Y = y) = Gamma(r + y) / (y! Gamma(r)) * B(a_k + r, b_k + y) / B(a_k, b_k),
  with mean r b_k / (a_k - 1). The nowcast of N_t is x_t + Y_t: its mean, and its
  (1 - level)/2 and (1 + level)/2 quantiles (5% and 95% by default) as the prediction
  interval. Complete weeks (k >= D) are returned unchanged.

Week-to-week variation (``week_to_week=True``, the default). The base model above lets
F(k) be unknown but the same for every onset week. On real data the fraction reported
within k weeks varies from week to week far beyond binomial noise (weekday of the onsets,
holidays, bursts of notifications), and the base model's intervals then cover much less
than their level (the Taiwan backtest, docs/algorithms/nowcast.md). The default lets this
week's F(k) be a draw from a beta distribution around the estimated mean, its spread taken
from the window: the beta-binomial intra-week correlation rho_k of "reported within k
weeks" is estimated by moments over the window weeks, and Beta(a_k, b_k) is replaced by the
beta with the same mean mu_k = a_k / (a_k + b_k) and concentration c_k given by
1 / (c_k + 1) = rho_k + 1 / (a_k + b_k + 1) (the variances of the two sources added).
With rho_k = 0 this is the base model; the predictive stays beta negative binomial. The
matching of the variances is an approximation, and rho_k from a window of few cases is
noisy; then the mean may not exist (a_k <= 1: ``expected`` is +inf), so ``median`` is the
robust point nowcast.

The base model follows the structure of Hoehle & an der Heiden's Bayesian nowcast (R's
``surveillance::nowcast``): Poisson-gamma counts, a Dirichlet delay distribution from a
moving window, the not-yet-reported cases predicted by binomial thinning. It is not a
reproduction of that function (it was not compared with R): the prior on the counts is
flat rather than fitted, and the delay distribution comes from complete weeks only.
Complete weeks (rather than the reverse-time hazard / chain-ladder estimate of Lawless
1994, which also uses the recent incomplete weeks) are what make the predictive
distribution exact and closed-form. The price: the delay distribution is at least D weeks
old, so a change in reporting speed is seen late.

The target is the number of cases reported within D weeks of onset; cases reported later
are outside the triangle (``reporting_triangle`` counts them apart, in ``beyond``).

Everything is vectorised over strata (e.g. regions): the triangle is (strata x onset week
x delay), and each stratum has its own delay distribution unless ``share_delay`` pools
them. Cells the triangle holds for reports after ``now`` (t + d > now) are ignored, so a
complete triangle can be nowcast "as of" any earlier week (backtesting).

References:
    Hoehle M, an der Heiden M (2014). Bayesian nowcasting during the STEC O104:H4 outbreak
    in Germany, 2011. Biometrics 70(4): 993-1002.
    Lawless JF (1994). Adjustments for reporting delays and the prediction of occurred but
    not reported events. Canadian Journal of Statistics 22(1): 15-31.
    Salmon M, Schumacher D, Hoehle M (2016). Monitoring count time series in R:
    aberration detection in public health surveillance. J Stat Softw 70(10): 1-35.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln

from epibridge.model.errors import ReasonedError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: values of y evaluated at once when searching the predictive quantiles.
_BLOCK: Final = 1024
#: cap on cells x values held at once (blocks double in length up to it).
_MAX_BLOCK: Final = 4096
#: the quantile search gives up (quantile +inf) beyond this many not-yet-reported cases.
_MAX_UNREPORTED: Final = 1_000_000
#: floor of the widened Beta's a + b (rho close to 1 would otherwise make it vanish).
_MIN_CONCENTRATION: Final = 1e-3


class NowcastParameterError(ReasonedError, ValueError):
    """A parameter or input the nowcast cannot use; ``reason`` says which."""


@dataclass(frozen=True, eq=False)
class ReportingTriangle:
    """Case counts by stratum, onset week and delay.

    ``counts[s, t, d]`` = cases of stratum s with onset week t reported d weeks later
    (d = 0 .. max_delay); ``beyond[s, t]`` = cases of onset week t reported more than
    max_delay weeks later, which the nowcast does not target.
    """

    counts: IntArray
    beyond: IntArray


@dataclass(frozen=True, eq=False)
class NowcastResult:
    """A nowcast as of week ``now``; arrays are (strata x onset week 0 .. now).

    ``observed`` is what was reported by ``now``; ``expected`` the predictive mean of the
    eventual count (reported within ``max_delay`` weeks; +inf where it does not exist),
    ``median`` its predictive median; ``lower`` and ``upper`` its
    (1 - level)/2 and (1 + level)/2 predictive quantiles; ``complete`` marks onset weeks
    with nothing left to report (there all four are equal). ``reported_fraction`` is the
    posterior mean of F(now - t). ``delay_pmf`` and ``delay_cdf`` (strata x delay 0 ..
    max_delay) are the posterior mean delay distribution; ``delay_cases`` the counts c_d
    it was estimated from; ``week_to_week_correlation`` (strata x k) the estimated rho_k
    (all 0 with ``week_to_week=False``). ``reported_fraction`` ignores rho (same mean).
    """

    now: int
    max_delay: int
    window: int
    level: float
    observed: FloatArray
    expected: FloatArray
    median: FloatArray
    lower: FloatArray
    upper: FloatArray
    complete: BoolArray
    reported_fraction: FloatArray
    delay_pmf: FloatArray
    delay_cdf: FloatArray
    delay_cases: FloatArray
    week_to_week_correlation: FloatArray


def reporting_triangle(
    onset_week: ArrayLike,
    report_week: ArrayLike,
    n_weeks: int,
    max_delay: int,
    stratum: ArrayLike | None = None,
    n_strata: int = 1,
    cases: ArrayLike | None = None,
) -> ReportingTriangle:
    """Aggregate a line list into a reporting triangle.

    ``onset_week`` and ``report_week`` are 0-based week indices (0 .. n_weeks - 1), one
    per record; ``stratum`` (0 .. n_strata - 1) defaults to 0; ``cases`` is the number of
    cases each record stands for (default 1). A report before onset is refused.
    """
    _check_whole("n_weeks", n_weeks, 1)
    _check_whole("max_delay", max_delay, 0)
    _check_whole("n_strata", n_strata, 1)
    onset = _as_index_vector("onset_week", onset_week)
    report = _as_index_vector("report_week", report_week)
    n = onset.shape[0]
    if report.shape[0] != n:
        raise NowcastParameterError(
            "nowcast_length_mismatch",
            f"onset_week has {n} entries but report_week has {report.shape[0]}: give one "
            "onset and one report week per record",
        )
    group = np.zeros(n, dtype=np.int64) if stratum is None else _as_index_vector("stratum", stratum)
    weight = np.ones(n, dtype=np.int64) if cases is None else _as_index_vector("cases", cases)
    if group.shape[0] != n or weight.shape[0] != n:
        raise NowcastParameterError(
            "nowcast_length_mismatch", "stratum and cases need one entry per record"
        )
    for name, values, top in (
        ("onset_week", onset, n_weeks),
        ("report_week", report, n_weeks),
        ("stratum", group, n_strata),
    ):
        bad = (values < 0) | (values >= top)
        if bad.any():
            raise NowcastParameterError(
                "nowcast_index_out_of_range",
                f"{int(bad.sum())} record(s) have {name} outside 0 .. {top - 1} (first at "
                f"record {int(np.argmax(bad))}); drop them or widen the range",
            )
    if (weight < 0).any():
        raise NowcastParameterError("nowcast_negative_count", "cases must be >= 0")
    delay = report - onset
    if (delay < 0).any():
        raise NowcastParameterError(
            "nowcast_report_before_onset",
            f"{int((delay < 0).sum())} record(s) are reported before their onset (first at "
            f"record {int(np.argmax(delay < 0))}); correct or drop them before nowcasting",
        )
    inside = delay <= max_delay
    counts = np.zeros((n_strata, n_weeks, max_delay + 1), dtype=np.int64)
    np.add.at(counts, (group[inside], onset[inside], delay[inside]), weight[inside])
    beyond = np.zeros((n_strata, n_weeks), dtype=np.int64)
    np.add.at(beyond, (group[~inside], onset[~inside]), weight[~inside])
    return ReportingTriangle(counts=counts, beyond=beyond)


def nowcast(
    triangle: ArrayLike,
    now: int,
    window: int = 8,
    level: float = 0.9,
    prior_shape: float = 0.5,
    delay_prior: float = 0.5,
    share_delay: bool = False,
    week_to_week: bool = True,
) -> NowcastResult:
    """Nowcast every onset week up to ``now`` from ``triangle`` (strata x week x delay).

    ``window`` complete onset weeks (now-D-window+1 .. now-D) estimate the delay
    distribution; ``level`` is the prediction interval's coverage; ``prior_shape`` is
    alpha0 and ``delay_prior`` kappa (module docstring). ``share_delay`` estimates one
    delay distribution from all strata together. ``week_to_week`` lets the reported
    fraction vary between onset weeks as much as it did in the window (beta-binomial);
    with False the delay distribution is the same for every week (the base model).
    """
    counts = _as_triangle(triangle)
    n_strata, n_weeks, width = counts.shape
    max_delay = width - 1
    _check_whole("now", now, 0)
    _check_whole("window", window, 1)
    if now >= n_weeks:
        raise NowcastParameterError(
            "nowcast_now_out_of_range",
            f"now must be an onset week of the triangle (0 .. {n_weeks - 1}), not {now}",
        )
    first = now - max_delay - window + 1
    if first < 0:
        raise NowcastParameterError(
            "nowcast_window_too_long",
            f"the delay distribution needs {window} complete onset weeks before week "
            f"{now - max_delay} (max delay {max_delay}), but the triangle starts only "
            f"{now - max_delay + 1} weeks before it; shorten window or nowcast a later week",
        )
    if not 0.0 < level < 1.0:
        raise NowcastParameterError(
            "nowcast_level_out_of_range", f"level must lie strictly between 0 and 1, not {level}"
        )
    for name, value in (("prior_shape", prior_shape), ("delay_prior", delay_prior)):
        if not (np.isfinite(value) and value > 0):
            raise NowcastParameterError(
                "nowcast_prior_not_positive", f"{name} must be a finite number > 0, not {value}"
            )

    weeks = np.arange(now + 1)
    back = now - weeks  # k = weeks since onset, as of now
    known = weeks[:, np.newaxis] + np.arange(width)[np.newaxis, :] <= now
    seen = np.where(known, counts[:, : now + 1, :], 0.0)
    observed = seen.sum(axis=2)

    delay_cases = counts[:, first : now - max_delay + 1, :].sum(axis=1)
    if share_delay:
        delay_cases = np.broadcast_to(delay_cases.sum(axis=0), delay_cases.shape).copy()
    alpha = delay_prior + delay_cases  # Dirichlet posterior, (strata x delay)
    cum = np.cumsum(alpha, axis=1)
    total = cum[:, -1:]
    k = np.minimum(back, max_delay)
    a = cum[:, k]  # (strata x week): posterior Beta(a, b) of F(k)
    b = total - a
    complete = np.broadcast_to(back >= max_delay, observed.shape).copy()
    rho = np.zeros((n_strata, width))
    if week_to_week:
        rho = _between_week_correlation(counts[:, first : now - max_delay + 1, :], share_delay)
        a, b = _widened(a, b, rho[:, k])

    r = prior_shape + observed
    with np.errstate(divide="ignore", invalid="ignore"):
        unreported_mean = np.where(a > 1.0, r * b / (a - 1.0), np.inf)
    unreported_mean[complete] = 0.0
    tail = (1.0 - level) / 2.0
    low_y, mid_y, high_y = _bnb_quantiles(r, a, b, ~complete, (tail, 0.5, 1.0 - tail))
    return NowcastResult(
        now=int(now),
        max_delay=max_delay,
        window=int(window),
        level=float(level),
        observed=observed,
        expected=observed + unreported_mean,
        median=observed + mid_y,
        lower=observed + low_y,
        upper=observed + high_y,
        complete=complete,
        reported_fraction=a / total,
        delay_pmf=alpha / total,
        delay_cdf=cum / total,
        delay_cases=delay_cases.astype(np.float64),
        week_to_week_correlation=rho,
    )


def _between_week_correlation(window: FloatArray, pooled: bool) -> FloatArray:
    """Beta-binomial intra-week correlation rho_k of "reported within k weeks", per stratum.

    Over the complete window weeks t with n_t > 0 cases, y_t of them within k weeks and
    mu = sum y / sum n: S = sum (y_t - n_t mu)^2 / (n_t mu (1 - mu)) has expectation about
    m - 1 + rho * sum (n_t - 1) (m weeks), hence the moment estimate
    rho = (S - (m - 1)) / sum (n_t - 1), clipped to [0, 1]; 0 where it cannot be estimated.
    Column D (everything reported) is 0. Shape (strata x delay).
    """
    if pooled:
        window = np.broadcast_to(window.sum(axis=0), window.shape)
    n = window.sum(axis=2)  # (strata x week)
    y = np.cumsum(window, axis=2)  # (strata x week x k)
    mu = y.sum(axis=1) / np.maximum(n.sum(axis=1), 1.0)[:, None]  # (strata x k)
    used = n > 0
    weeks = used.sum(axis=1)[:, None]
    spread = mu * (1.0 - mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (y - n[:, :, None] * mu[:, None, :]) ** 2 / (n[:, :, None] * spread[:, None, :])
    stat = np.where(used[:, :, None], terms, 0.0).sum(axis=1)
    extra = np.where(used, n - 1.0, 0.0).sum(axis=1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (stat - (weeks - 1.0)) / extra
    rho = np.where(np.isfinite(rho) & (spread > 0) & (weeks >= 2), rho, 0.0)
    rho = np.clip(rho, 0.0, 1.0)
    rho[:, -1] = 0.0
    return rho


def _widened(a: FloatArray, b: FloatArray, rho: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Beta(a, b) of the mean reported fraction widened by week-to-week variation rho.

    Same mean; the variance mu (1 - mu) / (c + 1) adds the two sources,
    1 / (c + 1) = rho + 1 / (a + b + 1), so rho = 0 gives back Beta(a, b).
    """
    total = a + b
    mean = a / total
    concentration = 1.0 / (rho + 1.0 / (total + 1.0)) - 1.0
    concentration = np.maximum(concentration, _MIN_CONCENTRATION)
    return mean * concentration, (1.0 - mean) * concentration


def _bnb_quantiles(
    r: FloatArray, a: FloatArray, b: FloatArray, active: BoolArray, probs: tuple[float, ...]
) -> tuple[FloatArray, ...]:
    """Quantiles (smallest y with CDF(y) >= prob) of BNB(r, a, b) where ``active``; 0 elsewhere.

    ``probs`` must be increasing. The CDF is summed from the exact log-pmf over blocks of y
    until every active cell has reached the last probability; +inf where it has not by
    ``_MAX_UNREPORTED``.
    """
    shape = r.shape
    idx = np.flatnonzero(active)
    found = [np.full(idx.size, np.nan) for _ in probs]
    if idx.size:
        rr, aa, bb = r.ravel()[idx], a.ravel()[idx], b.ravel()[idx]
        const = -gammaln(rr) - betaln(aa, bb)
        cdf_before = np.zeros(idx.size)
        start = 0
        todo = np.arange(idx.size)  # cells still short of the last probability
        while start < _MAX_UNREPORTED and todo.size:
            block = max(1, min(max(_BLOCK, start), _MAX_BLOCK * _BLOCK // todo.size))
            y = np.arange(start, start + block, dtype=np.float64)[None, :]
            rt, at, bt = rr[todo, None], aa[todo, None], bb[todo, None]
            logpmf = gammaln(rt + y) - gammaln(y + 1.0) + betaln(at + rt, bt + y)
            cdf = cdf_before[todo, None] + np.cumsum(np.exp(logpmf + const[todo, None]), axis=1)
            for j, prob in enumerate(probs):
                reached = cdf >= prob
                hit = np.isnan(found[j][todo]) & reached.any(axis=1)
                found[j][todo[hit]] = start + np.argmax(reached[hit], axis=1)
            cdf_before[todo] = cdf[:, -1]
            todo = todo[np.isnan(found[-1][todo])]
            start += block
    out = []
    for values in found:
        flat = np.zeros(int(np.prod(shape)))
        flat[idx] = np.where(np.isnan(values), np.inf, values)
        out.append(flat.reshape(shape))
    return tuple(out)


def _as_triangle(triangle: ArrayLike) -> FloatArray:
    try:
        counts = np.array(triangle, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NowcastParameterError(
            "nowcast_not_numeric", f"the reporting triangle must hold numbers: {exc}"
        ) from exc
    if counts.ndim != 3:
        raise NowcastParameterError(
            "nowcast_not_a_triangle",
            f"the reporting triangle must be 3-D (strata x onset week x delay), got "
            f"{counts.ndim} dimension(s); wrap a single stratum as triangle[np.newaxis]",
        )
    if counts.shape[1] == 0 or counts.shape[2] == 0 or counts.shape[0] == 0:
        raise NowcastParameterError(
            "nowcast_empty_triangle", f"the reporting triangle is empty (shape {counts.shape})"
        )
    if not np.isfinite(counts).all():
        raise NowcastParameterError(
            "nowcast_missing_count",
            "the reporting triangle holds NaN or infinite counts; a cell with no cases is 0",
        )
    if (counts < 0).any() or (counts != np.round(counts)).any():
        raise NowcastParameterError(
            "nowcast_not_a_count", "the reporting triangle must hold whole numbers >= 0"
        )
    return counts


def _as_index_vector(name: str, values: ArrayLike) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise NowcastParameterError(
            "nowcast_not_a_vector", f"{name} must be 1-D (one entry per record)"
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise NowcastParameterError(
            "nowcast_not_integer", f"{name} must hold whole numbers, not {array.dtype}"
        )
    return array.astype(np.int64)


def _check_whole(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise NowcastParameterError(
            "nowcast_not_integer", f"{name} must be a whole number, not {value!r}"
        )
    if value < minimum:
        raise NowcastParameterError(
            "nowcast_out_of_range", f"{name} must be >= {minimum}, not {value}"
        )
