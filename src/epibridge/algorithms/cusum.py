"""CUSUM for counts (Rossi, Lampugnani & Marchi 1999), as R's ``surveillance::algo.cusum``.

Why this module exists: the hub must raise the same alarms as the field's reference tool,
R's `surveillance` (version 1.20.3), on the same counts, so that any alarm can be checked
in R. This reproduces ``algo.cusum`` (the function behind ``cusum()`` for sts objects),
its quirks included.

All series are computed at once: ``observed`` is a (series x time) float matrix, NaN for
a missing count. The CUSUM is sequential in time, so there is one NumPy step per
monitored time point, each over every series; there is no loop over series.

With monitoring starting at 0-based column ``start`` (R's ``range[1]`` minus 1):

* m, the in-control mean, is the mean of every count before ``start`` (R's ``m = NULL``),
  or a given number (or one number per series);
* each count is standardised, ``trans``:
  ``"standard"`` z = (x - m) / sqrt(m) (R's default for ``algo.cusum``),
  ``"rossi"`` z = (x - 3m + 2 sqrt(x m)) / (2 sqrt(m)) (Rossi et al.'s approximately
  normal z3), ``"anscombe"`` z = 3/2 (x^(2/3) - m^(2/3)) / m^(1/6),
  ``"pearsonNegBin"`` z = (x - m) / sqrt(m + alpha m^2);
* C_t = max(0, C_{t-1} + z_t - k), C = 0 before ``start``; alarm iff C_t >= h. The chart
  is *not* reset after an alarm (R does not reset it either);
* the upper bound is the count at which C_t would reach h, i.e. z solved for x at
  z = h + k - C_{t-1}: ``standard`` ceiling(sqrt(m) (h + k - C_{t-1}) + m) (so, counts
  being whole numbers, the alarm is y >= upperbound, not y > upperbound), ``rossi``
  5m + 2 sqrt(m) c - 2 sqrt(4 m^2 + 2 m^(3/2) c) with c = h + k - C_{t-1},
  ``anscombe`` (2/3 m^(1/6) c + m^(2/3))^(3/2) (0 where the base is negative),
  ``pearsonNegBin`` sqrt(m + alpha m^2) c + m. As in R, a bound that is NaN or negative
  is reported as 0.

Deliberate differences from R, where R's result is degenerate:

* a missing count (NaN) makes R's CUSUM NA from there on, and its upper bound 0. Here the
  point is undefined (bound NaN, no alarm) and the CUSUM carries over unchanged;
* missing counts before ``start`` make R's m NA (every later bound 0); here m is the mean
  of the counts present. A series with m <= 0 or no count before ``start`` is undefined
  throughout (R divides by zero);
* ``rossi``: where c < -1.5 sqrt(m) even a count of 0 reaches h (z3 >= -1.5 sqrt(m)),
  and the bound is 0; R's formula returns the square of the negative root there, a
  positive bound below which counts still alarm;
* R's ``trans = "anscombe2nd"`` (whose back-transformation does not invert its own
  transformation), ``"anscombeNegBin"``, ``"none"`` and ``m = "glm"`` are not offered.

Only ``trans = "standard"`` with ``m = NULL`` is checked against R output
(tests/reference/surveillance/ref_misc_algos_salmonella.agona.csv); the other
transformations follow R's formulas and are checked for self-consistency (the bound is
the count at which the chart reaches h).

References:
    Rossi G, Lampugnani L, Marchi M (1999). An approximate CUSUM procedure for
    surveillance of health events. Stat Med 18(16): 2111-2122.
    Salmon M, Schumacher D, Hoehle M (2016). Monitoring count time series in R:
    aberration detection in public health surveillance. J Stat Softw 70(10): 1-35.
    R package surveillance 1.20.3, R/algo_cusum.R.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from epibridge.algorithms.matrix import count_matrix
from epibridge.model.errors import ReasonedError

Transformation = Literal["standard", "rossi", "anscombe", "pearsonNegBin"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: R's algo.cusum defaults
DEFAULT_K: Final = 1.04
DEFAULT_H: Final = 2.26
DEFAULT_ALPHA: Final = 0.1  # only used by trans="pearsonNegBin"


class CusumParameterError(ReasonedError, ValueError):
    """A parameter or input the CUSUM cannot use; ``reason`` says which."""


@dataclass(frozen=True, eq=False)
class CusumResult:
    """CUSUM output, every array (series x time) aligned with the input.

    ``expected`` is m (the in-control mean), ``statistic`` the CUSUM C_t, ``upperbound``
    the count at which the chart reaches h. Columns before ``start`` are NaN. ``alarm`` is
    True where C_t >= h; ``defined`` is False where no value is computed (not monitored,
    missing count, unusable m), and ``alarm`` is then False.
    """

    trans: Transformation
    k: float
    h: float
    start: int
    expected: FloatArray
    statistic: FloatArray
    upperbound: FloatArray
    alarm: BoolArray
    defined: BoolArray


def cusum(
    observed: ArrayLike,
    start: int,
    k: float = DEFAULT_K,
    h: float = DEFAULT_H,
    m: ArrayLike | None = None,
    trans: Transformation = "standard",
    alpha: float = DEFAULT_ALPHA,
) -> CusumResult:
    """Run the CUSUM on every row of ``observed`` (series x time, NaN = missing).

    ``start`` is the first monitored 0-based column (R's ``range[1] - 1``); ``k``, ``h``,
    ``m``, ``trans`` and ``alpha`` are R's control entries (``m`` None: the mean of the
    counts before ``start``; a number or one number per series otherwise).
    """
    counts = _as_matrix(observed)
    n_series, n_time = counts.shape
    _check(trans, k, h, alpha, start, n_time)
    mean = _in_control_mean(counts, start, m)
    usable = np.isfinite(mean) & (mean > 0)
    m_col = np.where(usable, mean, np.nan)[:, None]

    monitored = counts[:, start:]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = _standardise(monitored, m_col, trans, alpha)
    previous = np.zeros(n_series)
    before = np.full(monitored.shape, np.nan)  # C_{t-1}
    current = np.full(monitored.shape, np.nan)  # C_t
    for j in range(monitored.shape[1]):
        before[:, j] = previous
        step = np.maximum(0.0, previous + z[:, j] - k)
        present = ~np.isnan(step)
        current[:, j] = np.where(present, step, np.nan)
        previous = np.where(present, step, previous)
    with np.errstate(invalid="ignore"):
        bound = _back_transform(m_col, h + k - before, trans, alpha)
    bound = np.where(np.isnan(bound) | (bound < 0.0), 0.0, bound)

    defined = np.zeros(counts.shape, dtype=np.bool_)
    defined[:, start:] = usable[:, None] & ~np.isnan(monitored)
    upper = np.full(counts.shape, np.nan)
    statistic = np.full(counts.shape, np.nan)
    upper[:, start:] = bound
    statistic[:, start:] = current
    upper[~defined] = np.nan
    statistic[~defined] = np.nan
    with np.errstate(invalid="ignore"):
        alarm = defined & (statistic >= h)
    expected = np.full(counts.shape, np.nan)
    expected[:, start:] = m_col
    expected[~defined] = np.nan
    return CusumResult(
        trans=trans,
        k=float(k),
        h=float(h),
        start=start,
        expected=expected,
        statistic=statistic,
        upperbound=upper,
        alarm=alarm,
        defined=defined,
    )


def _standardise(x: FloatArray, m: FloatArray, trans: Transformation, alpha: float) -> FloatArray:
    if trans == "standard":
        z = (x - m) / np.sqrt(m)
    elif trans == "rossi":
        z = (x - 3.0 * m + 2.0 * np.sqrt(x * m)) / (2.0 * np.sqrt(m))
    elif trans == "anscombe":
        z = 1.5 * (x ** (2.0 / 3.0) - m ** (2.0 / 3.0)) / m ** (1.0 / 6.0)
    else:  # pearsonNegBin
        z = (x - m) / np.sqrt(m + alpha * m**2)
    return np.asarray(z, dtype=np.float64)


def _back_transform(
    m: FloatArray, c: FloatArray, trans: Transformation, alpha: float
) -> FloatArray:
    """The count x whose standardised value is c (R's formulas, before the 0 floor)."""
    if trans == "standard":
        x = np.ceil(np.sqrt(m) * c + m)
    elif trans == "rossi":
        x = 5.0 * m + 2.0 * np.sqrt(m) * c - 2.0 * np.sqrt(4.0 * m**2 + 2.0 * m**1.5 * c)
        # z3 >= -1.5 sqrt(m) for every count: below that, any count reaches h (R: see doc)
        x = np.where(c < -1.5 * np.sqrt(m), 0.0, x)
    elif trans == "anscombe":
        base = 2.0 / 3.0 * m ** (1.0 / 6.0) * c + m ** (2.0 / 3.0)
        x = np.where(base < 0.0, 0.0, np.abs(base) ** 1.5)
    else:  # pearsonNegBin
        x = np.sqrt(m + alpha * m**2) * c + m
    return np.asarray(x, dtype=np.float64)


def _in_control_mean(counts: FloatArray, start: int, m: ArrayLike | None) -> FloatArray:
    n_series = counts.shape[0]
    if m is None:
        history = counts[:, :start]
        present = ~np.isnan(history)
        total = np.where(present, history, 0.0).sum(axis=1)
        n = present.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(n > 0, total / n, np.nan), dtype=np.float64)
    try:
        given = np.broadcast_to(np.asarray(m, dtype=np.float64), (n_series,)).copy()
    except (TypeError, ValueError) as exc:
        raise CusumParameterError(
            "cusum_bad_m", f"m must be None, a number or one number per series ({n_series}): {exc}"
        ) from exc
    if not (np.isfinite(given) & (given > 0)).all():
        raise CusumParameterError("cusum_bad_m", "m must be finite and > 0 for every series")
    return given


def _as_matrix(observed: ArrayLike) -> FloatArray:
    counts = count_matrix(observed, "cusum", CusumParameterError)
    if np.isinf(counts).any() or (counts < 0).any():
        raise CusumParameterError(
            "cusum_bad_count", "observed holds an infinite or negative count; NaN marks missing"
        )
    return counts


def _check(trans: str, k: float, h: float, alpha: float, start: int, n_time: int) -> None:
    if trans not in get_args(Transformation):
        raise CusumParameterError(
            "cusum_unknown_trans",
            f"trans must be one of {', '.join(get_args(Transformation))}, not {trans!r}",
        )
    if not (np.isfinite(k) and np.isfinite(h) and h > 0):
        raise CusumParameterError(
            "cusum_bad_kh", f"k must be finite and h finite and > 0, not k={k}, h={h}"
        )
    if not (np.isfinite(alpha) and alpha >= 0):
        raise CusumParameterError("cusum_bad_alpha", f"alpha must be >= 0, not {alpha}")
    if isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise CusumParameterError("cusum_bad_start", f"start must be an integer, not {start!r}")
    if not 1 <= start < n_time:
        raise CusumParameterError(
            "cusum_bad_start",
            f"start must leave at least one earlier point (to estimate m) and lie within the "
            f"{n_time} time points: 1 <= start < {n_time}, not {start}",
        )
