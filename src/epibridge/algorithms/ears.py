"""EARS C1, C2 and C3: the CDC's short-baseline aberration detectors, as R computes them.

Why this module exists: the hub must raise the same alarms that the field's reference
tool, R's `surveillance::earsC` (version 1.20.3), raises on the same counts, so that an
epidemiologist can check any of our alarms in R. It therefore reproduces R's arithmetic,
its quirks included, and offers the statistic as the EARS documentation defines it as an
explicit option (``c3_variant="documented"``).

All series are computed at once: ``observed`` is a (series x time) float matrix, NaN for
a missing count, and one compiled pass (``ears_kernel.ears_pass``) runs along every
series, keeping running window sums, for the monitored columns only. Window sums of
whole-number counts are exact in float64, so the mean is NumPy's and the sd differs from
NumPy's two-pass sd by a few units in the last place; other counts take the two-pass sums
(see ``ears_kernel``).

At time point t (0-based column index), with ``baseline`` = n (default 7) and
z = qnorm(1 - alpha):

* C1: mean m and sample standard deviation s (n - 1 denominator) of the n counts just
  before t (t-n .. t-1); upper bound U = m + z * max(s, min_sigma).
* C2: the same over the n counts that end 3 points before t (t-n-2 .. t-3), leaving a
  two-point guard band; U = m + z * max(s, min_sigma).
* C3, as R computes it: with C2(i) = (y_i - m_i) / max(s_i, min_sigma) the C2 statistic,
  U = max(0, y_t + max(s_t, min_sigma) * (z - sum_{i=t-2}^{t-1} max(0, C2(i) - 1))).
  The alarm y_t > U is then true exactly when the two *previous* points' excess already
  exceeds z (and y_t > 0): the current count's own C2 does not enter it.
* C3, as documented (``c3_variant="documented"``): C3(t) = sum_{i=t-2}^{t} max(0, C2(i) - 1),
  the C2 statistics of the current and the two previous points, each reduced by 1 and
  floored at 0 (Hutwagner et al. 2003, 2005; Fricker et al. 2008), alarm
  when C3(t) > z. Its upper bound is the count above which that happens:
  U = m_t + s_t * (1 + z - sum_{i=t-2}^{t-1} max(0, C2(i) - 1)), and -inf when the
  previous two points alone already exceed z (every count alarms).

An alarm is y_t > U. Like R, any missing count in a window makes that window's mean and
sd missing (NaN), a 0/0 C2 statistic (constant baseline, min_sigma = 0, y_t = m) is NaN
and propagates through C3's sums, and the alarm is undefined wherever the count or the
upper bound is missing. The result keeps R's NA as NaN in the float arrays and as
``defined == False`` beside a plain boolean ``alarm`` (False where undefined).

Alpha: when ``alpha`` is None, R's earsC uses 0.001 for C1 and C2 and 0.025 for C3
(z about 3.09 and 1.96; EARS used thresholds 3 and 2). Its argument list shows
``alpha = 0.001``, but that list is only used when no control list is given at all,
which means method C1.

Monitored range: R monitors, by default, from the first point with enough history:
0-based column n for C1, n + 2 for C2 and n + 4 for C3 (C3 needs C2 at t - 2). Results
at a point do not depend on the range, so ``start`` only decides from which column
values are reported; columns before it are NaN / undefined.

One deliberate difference: with a range of a single time point, R's C3 takes the sd of a
one-column matrix by row and returns NA (``as.matrix(refVals[3, ])``); we compute the
value, as R does for any longer range.

References:
    Hutwagner L, Thompson W, Seeman GM, Treadwell T (2003). The bioterrorism
    preparedness and response Early Aberration Reporting System (EARS). J Urban Health
    80(2 Suppl 1): i89-i96.
    Hutwagner L, Browne T, Seeman GM, Fleischauer AT (2005). Comparing aberration
    detection methods with simulated data. Emerg Infect Dis 11(2): 314-316.
    Fricker RD Jr, Hegler BL, Dunfee DA (2008). Comparing syndromic surveillance
    detection methods: EARS' versus a CUSUM-based methodology. Stat Med 27(17): 3407-3429.
    Salmon M, Schumacher D, Hoehle M (2016). Monitoring count time series in R:
    aberration detection in public health surveillance. J Stat Softw 70(10): 1-35.
    R package surveillance 1.20.3, R/earsC.R.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

from epibridge.algorithms.ears_kernel import ears_pass
from epibridge.algorithms.matrix import count_matrix
from epibridge.model.errors import ReasonedError

Method = Literal["C1", "C2", "C3"]
C3Variant = Literal["r", "documented"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: alpha used when none is given, per method, as R's earsC does with a control list.
DEFAULT_ALPHA: Final[dict[str, float]] = {"C1": 0.001, "C2": 0.001, "C3": 0.025}
#: R refuses shorter baselines ("Minimum baseline to use is 3.").
MIN_BASELINE: Final = 3
#: points between the end of the baseline and the current point (C2's guard band).
_GUARD: Final[dict[str, int]] = {"C1": 0, "C2": 2, "C3": 2}


class EarsParameterError(ReasonedError, ValueError):
    """A parameter or input the EARS detectors cannot use; ``reason`` says which."""


@dataclass(frozen=True, eq=False)
class EarsResult:
    """EARS output, every array (series x time) aligned with the input.

    ``expected`` is the baseline mean (C3: that of the current point's C2 baseline),
    ``sd`` the baseline standard deviation actually used, i.e. floored at ``min_sigma``,
    ``statistic`` the z-score (y - expected) / sd for C1 and C2 and the documented C3
    statistic for C3 (under ``c3_variant="r"`` R's alarm is not ``statistic > z``; see
    the module docstring). Columns before ``start`` are NaN. ``alarm`` is True where
    y > upperbound; ``defined`` is False where R gives NA (count or upper bound missing,
    or not monitored), and ``alarm`` is then False.
    """

    method: Method
    c3_variant: C3Variant
    alpha: float
    z: float
    baseline: int
    min_sigma: float
    start: int
    expected: FloatArray
    sd: FloatArray
    upperbound: FloatArray
    statistic: FloatArray
    alarm: BoolArray
    defined: BoolArray


def first_monitored(method: Method, baseline: int = 7) -> int:
    """The first 0-based time index with enough history for ``method`` (R's default range)."""
    extra = 2 if method == "C3" else 0
    return baseline + _GUARD[method] + extra


def ears(
    observed: ArrayLike,
    method: Method,
    alpha: float | None = None,
    baseline: int = 7,
    min_sigma: float = 0.0,
    c3_variant: C3Variant = "r",
    start: int | None = None,
) -> EarsResult:
    """Run EARS ``method`` on every row of ``observed`` (series x time, NaN = missing).

    ``alpha`` defaults to R's choice (0.001 for C1/C2, 0.025 for C3); ``baseline`` and
    ``min_sigma`` are R's ``baseline`` and ``minSigma``; ``start`` is the first 0-based
    time index reported (default: the first with enough history).
    """
    _check_choices(method, c3_variant, baseline, min_sigma)
    counts = _as_matrix(observed)
    level = DEFAULT_ALPHA[method] if alpha is None else _checked_alpha(alpha)
    n_time = counts.shape[1]
    begin = _checked_start(start, method, baseline, n_time)
    z = _upper_quantile(level)

    n_series = counts.shape[0]
    expected, sd, upper, statistic = (np.empty((n_series, n_time)) for _ in range(4))
    alarm = np.empty((n_series, n_time), dtype=np.bool_)
    defined = np.empty((n_series, n_time), dtype=np.bool_)
    plan = (
        baseline,
        _GUARD[method],
        begin,
        float(min_sigma),
        z,
        method == "C3",
        c3_variant == "documented",
    )
    ears_pass(counts, plan, (expected, sd, upper, statistic, alarm, defined))
    return EarsResult(
        method=method,
        c3_variant=c3_variant,
        alpha=level,
        z=z,
        baseline=baseline,
        min_sigma=float(min_sigma),
        start=begin,
        expected=expected,
        sd=sd,
        upperbound=upper,
        statistic=statistic,
        alarm=alarm,
        defined=defined,
    )


@functools.lru_cache(maxsize=64)
def _upper_quantile(level: float) -> float:
    """qnorm(1 - level), once per level: ``ndtri`` is what ``scipy.stats.norm.ppf``
    evaluates, without its argument handling."""
    return float(ndtri(1.0 - level))


def _as_matrix(observed: ArrayLike) -> FloatArray:
    """The counts, C-ordered for the compiled pass (not copied when they already are:
    nothing here writes to them)."""
    counts = np.ascontiguousarray(count_matrix(observed, "ears", EarsParameterError, copy=False))
    # a finite total rules out a missing or an infinite count in one pass over the data
    if not np.isfinite(counts.sum()) and np.isinf(counts).any():
        raise EarsParameterError(
            "ears_infinite_count", "observed holds an infinite count; use NaN for a missing one"
        )
    return counts


def _check_choices(method: str, c3_variant: str, baseline: int, min_sigma: float) -> None:
    if method not in get_args(Method):
        raise EarsParameterError(
            "ears_unknown_method", f"method must be one of C1, C2, C3, not {method!r}"
        )
    if c3_variant not in get_args(C3Variant):
        raise EarsParameterError(
            "ears_unknown_c3_variant",
            f"c3_variant must be 'r' or 'documented', not {c3_variant!r}",
        )
    if isinstance(baseline, bool) or not isinstance(baseline, int | np.integer):
        raise EarsParameterError(
            "ears_baseline_not_integer",
            f"baseline must be a whole number of points, not {baseline!r}",
        )
    if baseline < MIN_BASELINE:
        raise EarsParameterError(
            "ears_baseline_too_short",
            f"baseline must be at least {MIN_BASELINE} points (as in R), not {baseline}",
        )
    if not np.isfinite(min_sigma) or min_sigma < 0:
        raise EarsParameterError(
            "ears_negative_min_sigma", f"min_sigma must be a finite number >= 0, not {min_sigma}"
        )


def _checked_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise EarsParameterError(
            "ears_alpha_out_of_range", f"alpha must lie strictly between 0 and 1, not {alpha}"
        )
    return float(alpha)


def _checked_start(start: int | None, method: Method, baseline: int, n_time: int) -> int:
    earliest = first_monitored(method, baseline)
    begin = earliest if start is None else int(start)
    if begin < earliest:
        raise EarsParameterError(
            "ears_start_too_early",
            f"{method} with baseline {baseline} needs {earliest} earlier points: start must be "
            f">= {earliest}, not {begin}",
        )
    if begin >= n_time:
        raise EarsParameterError(
            "ears_series_too_short",
            f"nothing to monitor: {method} with baseline {baseline} starts at index {begin} but "
            f"the series have {n_time} time points",
        )
    return begin
