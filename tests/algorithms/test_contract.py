"""The contract every detector keeps, checked the same way for each.

Each detector takes a (series x time) matrix of counts (NaN for missing) and returns
arrays of the same shape: ``expected``, ``upperbound``, ``alarm`` and ``defined``. For
every detector:

1. shapes match the input, and nothing is reported before the first monitored point;
2. an alarm is only ever raised where the result is defined, on a count above the bound
   (at or above it for the CUSUM and GLR charts, whose bound is the smallest alarming
   count);
3. no look-ahead: changing counts after time t changes nothing at or before t;
4. all series at once equals one series at a time (no series leaks into another);
5. the same input gives the same output (no hidden randomness or state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from epibridge.algorithms.cusum import cusum
from epibridge.algorithms.ears import ears
from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY, farrington_flexible
from epibridge.algorithms.glrnb import glrnb

Detector = Callable[[np.ndarray, int], Any]

# name: (run, first monitored index, alarm allowed at a count equal to the bound)
DETECTORS: dict[str, tuple[Detector, int, bool]] = {
    "ears-c1": (lambda y, s: ears(y, "C1", start=s), 7, False),
    "ears-c2": (lambda y, s: ears(y, "C2", start=s), 9, False),
    "ears-c3": (lambda y, s: ears(y, "C3", start=s), 11, False),
    "farrington": (lambda y, s: farrington_flexible(y, FARRINGTON, start=s), 3 * 52 + 3, False),
    "noufaily": (lambda y, s: farrington_flexible(y, NOUFAILY, start=s), 5 * 52 + 3, False),
    "cusum": (lambda y, s: cusum(y, start=s), 20, True),
    "cusum-rossi": (lambda y, s: cusum(y, start=s, trans="rossi"), 20, True),
    "glrnb": (lambda y, s: glrnb(y, start=s), 52, True),
}


def _counts(n_series: int, n_time: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_time)
    season = 4 + 3 * np.sin(2 * np.pi * t / 52)
    counts = rng.poisson(season * rng.uniform(0.5, 3, size=(n_series, 1))).astype(float)
    counts[:, -20:-16] += 25  # an outbreak near the end
    counts[0, -30] = np.nan  # a missing count
    return counts


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_the_detector_contract(name: str) -> None:
    run, first, inclusive = DETECTORS[name]
    n_time = first + 40
    y = _counts(4, n_time, seed=len(name))
    r = run(y, first)
    for field in ("expected", "upperbound", "alarm", "defined"):
        assert getattr(r, field).shape == y.shape, field
    # 1. nothing before the first monitored point
    assert np.isnan(r.upperbound[:, :first]).all() and not r.defined[:, :first].any()
    # 2. alarms only where defined, on a count above the bound
    assert not (r.alarm & ~r.defined).any()
    above = np.zeros_like(r.alarm)
    compare = np.greater_equal if inclusive else np.greater
    compare(y, r.upperbound, out=above, where=~np.isnan(y) & ~np.isnan(r.upperbound))
    assert not (r.alarm & ~above).any()
    assert r.alarm[:, -20:-16].any(), "the planted outbreak is found"
    # 3. no look-ahead
    t = first + 15
    changed = y.copy()
    changed[:, t + 1 :] = changed[:, t + 1 :] * 3 + 7
    r2 = run(changed, first)
    for field in ("expected", "upperbound"):
        a, b = getattr(r, field)[:, : t + 1], getattr(r2, field)[:, : t + 1]
        assert np.array_equal(a, b, equal_nan=True), field
    assert np.array_equal(r.alarm[:, : t + 1], r2.alarm[:, : t + 1])
    # 4. all series at once equals one at a time
    for i in range(y.shape[0]):
        one = run(y[i : i + 1], first)
        assert np.allclose(one.upperbound[0], r.upperbound[i], rtol=1e-12, equal_nan=True)
        assert np.array_equal(one.alarm[0], r.alarm[i])
        assert np.array_equal(one.defined[0], r.defined[i])
    # 5. deterministic
    again = run(y, first)
    assert np.array_equal(again.upperbound, r.upperbound, equal_nan=True)
