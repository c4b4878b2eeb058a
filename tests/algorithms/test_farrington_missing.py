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


#: Two sparse series of the demo's regional picture (the Mekong scenario's hub, weekly from
#: 1997-12-29, 1,508 weeks): some of their Noufaily baselines hold a single count.
SPARSE = (
    {921: 4, 927: 4, 928: 6, 929: 4, 930: 4, 932: 5, 933: 7, 1024: 3, 1078: 5, 1344: 5},
    {917: 3, 922: 4, 924: 4, 1340: 4, 1344: 4, 1345: 5, 1346: 4, 1350: 4, 1352: 6},
)


def test_baselines_of_one_count_leave_no_bound_and_do_not_break_the_batch() -> None:
    """A baseline of one count has no residual degree of freedom: its fit is unusable
    (NA) and must not be reweighted. Reweighting it gave NaN weights (hat value 1,
    infinite residual), which broke the shared solve when two such series were run
    together (the demo's detection failed with 'SVD did not converge')."""
    counts = np.full((2, 1508), np.nan)
    for row, values in enumerate(SPARSE):
        for at, value in values.items():
            counts[row, at] = value
    dates = np.datetime64("1997-12-29") + 7 * np.arange(1508)
    batch = farrington_flexible(counts, NOUFAILY, dates=dates, start=1504)
    for row in range(2):
        alone = farrington_flexible(counts[row : row + 1], NOUFAILY, dates=dates, start=1504)
        np.testing.assert_array_equal(alone.upperbound, batch.upperbound[row : row + 1])
        np.testing.assert_array_equal(alone.defined, batch.defined[row : row + 1])
