"""A missing week counts only where R's would: in a baseline or the limit54 window."""

from __future__ import annotations

import numpy as np

from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY, farrington_flexible


def _seasonal(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(420)
    return rng.poisson(8 + 5 * np.sin(2 * np.pi * t / 52)).astype(np.float64)[None, :]


def test_an_old_missing_week_changes_nothing_later() -> None:
    for control in (FARRINGTON, NOUFAILY):
        full = _seasonal(3)
        holed = full.copy()
        holed[0, 5] = np.nan  # years before any monitored week's baseline
        a = farrington_flexible(full, control, start=400)
        b = farrington_flexible(holed, control, start=400)
        np.testing.assert_array_equal(a.alarm, b.alarm)
        np.testing.assert_allclose(a.upperbound, b.upperbound, rtol=1e-12)
        assert np.isfinite(b.upperbound[0, 400:]).all()


def test_a_missing_week_in_the_limit54_window_leaves_no_bound() -> None:
    holed = _seasonal(4)
    holed[0, 408] = np.nan
    result = farrington_flexible(holed, FARRINGTON, start=400)
    bounds = result.upperbound[0]
    assert np.isnan(bounds[408:412]).all()  # the 4 weeks whose window holds week 408
    assert np.isfinite(bounds[400:408]).all() and np.isfinite(bounds[412:]).all()
