"""The regional sum of the countries' corrected estimates, with an approximate interval.

Each country's corrected count comes with its own 95% interval (``hub/burden.py``:
reporting completeness and under-ascertainment). The countries' uncertainties are
independent, so the interval of their sum is narrower than the sum of their bounds. The
bulletin approximates it by moment matching (Fenton-Wilkinson): each country's estimate
is taken as log-normal with median the point estimate and the log-scale spread of its
interval, and the sum as the log-normal of the same mean and variance. With one country
the result is that country's own estimate and interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from epibridge.algorithms.burden import LEVEL, z_value


def sum_interval(
    parts: Iterable[tuple[float, float, float]], level: float = LEVEL
) -> tuple[float, float, float] | None:
    """(estimate, low, high) of the sum of independent ``(estimate, low, high)`` parts.

    Parts with an estimate of zero add nothing; a part without a positive interval adds
    its estimate as a fixed number. None when there is nothing to sum."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    z = z_value(level)
    fixed = 0.0
    mean = variance = point = 0.0
    seen = False
    for estimate, low, high in parts:
        seen = True
        point += estimate
        if estimate <= 0:
            continue
        if not (0 < low <= estimate <= high) or high == low:
            fixed += estimate
            continue
        spread = (math.log(high) - math.log(low)) / (2 * z)
        mu = math.log(estimate)
        mean += math.exp(mu + spread**2 / 2)
        variance += (math.exp(spread**2) - 1) * math.exp(2 * mu + spread**2)
    if not seen:
        return None
    if mean <= 0:
        return point, fixed, fixed
    spread2 = math.log(1 + variance / mean**2)
    mu = math.log(mean) - spread2 / 2
    spread = math.sqrt(spread2)
    return point, fixed + math.exp(mu - z * spread), fixed + math.exp(mu + z * spread)


def change(current: int, previous: int | None) -> float | None:
    """The relative change from ``previous`` to ``current`` (None without a base)."""
    if previous is None or previous == 0:
        return None
    return (current - previous) / previous
