"""The EARS arithmetic as one compiled pass over every series (Numba).

Why compiled: EARS does a handful of operations per point, so as NumPy array passes its
time is spent allocating, page-faulting and re-reading (series x time) temporaries rather
than computing; issue 6 asks for 1,000 times R's speed, which the NumPy version (about 15
array passes and seven temporaries) missed by a factor of 2-3. One loop per series that
keeps running window sums and writes each result once does the same arithmetic in a
single pass and allocates nothing but the outputs (decision note:
docs/decisions/0011-compiled-ears-kernel.md).

The arithmetic is exactly that of the NumPy version it replaced, operation by operation
(the tests compare it with NumPy's mean and two-pass sd and with R's outputs):

* a series whose counts in the windows are whole numbers (missing ones aside) small
  enough that n * sum(x^2) stays below 2^53 keeps running sums of x and x^2 over its
  window, exact in float64: mean = s / n, variance = (n q - s^2) / (n (n - 1)); a window
  holding a missing count has a missing mean and sd;
* any other series takes NumPy's two-pass sums over each window: the counts added left
  to right, divided by n, then the squared deviations added left to right over n - 1.

``error_model="numpy"`` keeps IEEE division (x / 0 is inf, 0 / 0 NaN) as NumPy and R
have it, and no fast-math flag is set, so no operation is fused or reordered.
"""

from __future__ import annotations

import math
from typing import Final

import numba
import numpy as np
from numpy.typing import NDArray

#: window sums of squares below this are exact in float64 (integers up to 2^53)
_EXACT: Final = float(2**53)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _exact_sums(counts: NDArray[np.float64], row: int, lead: int, stop: int, n: float) -> bool:
    """Whether the window sums of ``counts[row, lead:stop]`` are exact in float64: whole
    numbers (missing ones aside) with n * (n * max^2) below 2^53, which bounds n * q."""
    biggest = 0.0
    for k in range(lead, stop):
        x = counts[row, k]
        if not math.isnan(x):
            if x != math.floor(x):
                return False
            biggest = max(biggest, abs(x))
    return n * (n * biggest * biggest) < _EXACT


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _two_pass(
    counts: NDArray[np.float64], row: int, first: int, baseline: int
) -> tuple[float, float]:
    """NumPy's mean and two-pass sample variance of ``counts[row, first:first+baseline]``."""
    n = float(baseline)
    m = counts[row, first]
    for k in range(first + 1, first + baseline):
        m += counts[row, k]
    m /= n
    d = counts[row, first] - m
    v = d * d
    for k in range(first + 1, first + baseline):
        d = counts[row, k] - m
        v += d * d
    return m, v / (n - 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _floored(value: float, floor: float) -> float:
    """max(value, floor) with NaN kept, as R's pmax without na.rm."""
    if value < floor:
        return floor
    return value


#: What to compute: baseline, guard, begin, min_sigma, z, C3?, documented C3?
Plan = tuple[int, int, int, float, float, bool, bool]
#: The six (series x time) outputs: expected, sd, upper bound, statistic, alarm, defined.
Outputs = tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.bool_],
    NDArray[np.bool_],
]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def ears_pass(counts: NDArray[np.float64], plan: Plan, outputs: Outputs) -> None:
    """Fill the six ``outputs`` for every series of ``counts`` (C-ordered).

    ``plan`` is (baseline, guard, begin, min_sigma, z, c3, documented): the window of point
    t is ``baseline`` counts ending ``guard`` points before t. Columns from ``begin`` on
    get the results (see ``epibridge.algorithms.ears`` for C1, C2 and both C3 variants);
    columns before it are NaN / False. C3 (``c3``) also runs the two points before
    ``begin``, whose C2 statistics its sums need.
    """
    begin = plan[2]
    for i in range(counts.shape[0]):
        for values in outputs[:4]:
            values[i, :begin] = np.nan
        outputs[4][i, :begin] = False
        outputs[5][i, :begin] = False
        _series(counts, i, plan, outputs)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _moved(x: float, sign: float, s: float, q: float, missing: int) -> tuple[float, float, int]:
    """The running sums after count ``x`` enters (sign 1) or leaves (sign -1) the window."""
    if math.isnan(x):
        return s, q, missing + int(sign)
    return s + sign * x, q + sign * (x * x), missing


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _series(counts: NDArray[np.float64], i: int, plan: Plan, outputs: Outputs) -> None:
    """``ears_pass`` for series ``i``, columns ``begin`` on."""
    baseline, guard, begin, min_sigma, z, c3, documented = plan
    expected, sd, upper, statistic, alarm, defined = outputs
    n_time = counts.shape[1]
    n = float(baseline)
    low = begin - 2 if c3 else begin
    lead = low - guard - baseline  # first count of the first window
    exact = _exact_sums(counts, i, lead, n_time - guard - 1, n)
    # running sums of the window's present counts and how many are missing (exact
    # series); the window of t is counts[t - guard - baseline : t - guard]
    s, q, missing = 0.0, 0.0, 0
    if exact:
        for k in range(lead, lead + baseline - 1):
            s, q, missing = _moved(counts[i, k], 1.0, s, q, missing)
    before, last = np.nan, np.nan  # C3: max(0, C2 - 1) at t - 2 and t - 1
    for t in range(low, n_time):
        first = t - guard - baseline
        if exact:
            s, q, missing = _moved(counts[i, first + baseline - 1], 1.0, s, q, missing)
            m, v = (np.nan, np.nan) if missing else (s / n, (q * n - s * s) / (n * (n - 1.0)))
            s, q, missing = _moved(counts[i, first], -1.0, s, q, missing)
        else:
            m, v = _two_pass(counts, i, first, baseline)
        r = _floored(math.sqrt(v), min_sigma)
        y = counts[i, t]
        value = (y - m) / r  # the C2 statistic; C3 replaces it
        if c3:
            excess = _floored(value - 1.0, 0.0)
            previous = before + last
            value = previous + excess
            room = z - previous
            if documented:
                bound = -np.inf if room < 0.0 else m + r * (1.0 + room)
            else:
                bound = _floored(y + r * room, 0.0)
            before, last = last, excess
        else:
            bound = r * z + m
        if t >= begin:
            expected[i, t] = m
            sd[i, t] = r
            upper[i, t] = bound
            statistic[i, t] = value
            alarm[i, t] = y > bound  # False where either is NaN
            defined[i, t] = not (math.isnan(y) or math.isnan(bound))
