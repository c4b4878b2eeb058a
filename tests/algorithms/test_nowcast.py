"""The nowcast on simulated reporting triangles whose truth is known.

Simulated data follow the model (Poisson counts, each case's delay drawn from a fixed
distribution), so the checks are: the delay distribution is recovered; complete weeks
come back unchanged; the 90% prediction intervals cover the eventual counts at about the
nominal rate over many seeded strata; the result depends only on what was reported by
``now``; strata do not leak into each other; the predictive distribution matches a Monte
Carlo draw of the same model; and bad input is refused with a clear reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from epibridge.algorithms.nowcast import (
    NowcastParameterError,
    _bnb_quantiles,
    nowcast,
    reporting_triangle,
)

PMF = np.array([0.4, 0.3, 0.15, 0.1, 0.05])  # delays 0..4 weeks
D = len(PMF) - 1


def _simulate(
    n_strata: int, n_weeks: int, seed: int, mean: float = 30.0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """A full triangle (strata x week x delay) and the true totals (strata x week)."""
    rng = np.random.default_rng(seed)
    # weekly expected counts vary a lot (gamma, coefficient of variation 1), per stratum
    lam = rng.gamma(1.0, mean, size=(n_strata, n_weeks))
    totals = rng.poisson(lam)
    triangle = np.stack(
        [np.stack([rng.multinomial(n, PMF) for n in row]) for row in totals]
    ).astype(np.int64)
    return triangle, totals


def test_the_delay_distribution_is_recovered() -> None:
    triangle, _ = _simulate(1, 60, seed=1, mean=2000.0)
    r = nowcast(triangle, now=59, window=20)
    assert r.delay_pmf.shape == (1, D + 1)
    assert np.allclose(r.delay_pmf[0], PMF, atol=0.01)
    assert np.allclose(r.delay_cdf[0], np.cumsum(PMF), atol=0.01)
    assert r.delay_cdf[0, -1] == pytest.approx(1.0)
    # the estimate uses exactly the complete onset weeks now-D-window+1 .. now-D
    assert np.array_equal(r.delay_cases[0], triangle[0, 59 - D - 19 : 59 - D + 1].sum(axis=0))


def test_complete_weeks_are_returned_unchanged() -> None:
    triangle, totals = _simulate(3, 30, seed=2)
    now = 25
    r = nowcast(triangle, now=now)
    assert r.observed.shape == (3, now + 1)
    done = np.arange(now + 1) <= now - D
    assert np.array_equal(r.complete, np.broadcast_to(done, (3, now + 1)))
    for field in (r.observed, r.expected, r.lower, r.upper):
        assert np.array_equal(field[:, done], totals[:, : now - D + 1])
    # recent weeks: the truth is never below what is already reported, nor is the nowcast
    recent = ~done
    assert (r.lower[:, recent] >= r.observed[:, recent]).all()
    assert (r.expected[:, recent] > r.observed[:, recent]).all()
    assert (r.upper[:, recent] >= r.expected[:, recent] - 1).all()


@pytest.mark.parametrize(("week_to_week", "top"), [(False, 0.95), (True, 0.97)])
def test_the_90_percent_intervals_cover_the_truth_at_about_the_nominal_rate(
    week_to_week: bool, top: float
) -> None:
    n_strata, n_weeks = 400, 30
    triangle, totals = _simulate(n_strata, n_weeks, seed=3)
    now = n_weeks - 1
    r = nowcast(triangle, now=now, window=8, week_to_week=week_to_week)
    covered = []
    for back in range(D):
        t = now - back
        hit = (r.lower[:, t] <= totals[:, t]) & (totals[:, t] <= r.upper[:, t])
        covered.append(hit)
        # each week back, over 400 strata: nominal 0.90; discrete quantiles over-cover a
        # little, most where few cases are still missing (3 weeks back: about 0.95-0.97)
        assert 0.84 <= hit.mean() <= 0.98, (back, hit.mean())
    # the week-to-week widening, estimated from noise here, may only add a little
    assert 0.86 <= np.mean(covered) <= top
    # and the naive count is biased low where the nowcast is not
    err_naive = totals[:, now] - r.observed[:, now]
    err_nowcast = totals[:, now] - r.expected[:, now]
    assert err_naive.mean() > 5
    assert abs(err_nowcast.mean()) < 0.2 * err_naive.mean()
    assert (r.lower <= r.median).all() and (r.median <= r.upper).all()


def test_week_to_week_variation_is_estimated_and_widens_the_interval() -> None:
    rng = np.random.default_rng(9)
    n_weeks = 30
    triangle = np.zeros((2, n_weeks, D + 1), dtype=np.int64)
    for t in range(n_weeks):
        triangle[0, t] = rng.multinomial(500, PMF)  # one delay distribution for all weeks
        triangle[1, t] = rng.multinomial(500, rng.dirichlet(PMF * 20))  # varies by week
    fixed = nowcast(triangle, now=n_weeks - 1)
    rho = fixed.week_to_week_correlation
    assert rho.shape == (2, D + 1) and rho[:, -1].tolist() == [0.0, 0.0]
    assert rho[0].max() < 0.01 and rho[1, :-1].min() > 0.01
    base = nowcast(triangle, now=n_weeks - 1, week_to_week=False)
    assert not base.week_to_week_correlation.any()
    width = fixed.upper - fixed.lower
    assert (width[1, -D:] > (base.upper - base.lower)[1, -D:]).all()


def test_the_predictive_quantiles_match_a_monte_carlo_draw_of_the_model() -> None:
    rng = np.random.default_rng(4)
    r = np.array([[12.5, 0.5, 250.5]])
    a = np.array([[40.0, 6.0, 90.0]])
    b = np.array([[8.0, 2.0, 70.0]])
    low, high = _bnb_quantiles(r, a, b, np.ones(r.shape, dtype=bool), (0.05, 0.95))
    for i in range(3):
        p = rng.beta(a[0, i], b[0, i], 200_000)
        y = rng.negative_binomial(r[0, i], p)
        lo_mc, hi_mc = np.quantile(y, [0.05, 0.95])
        assert abs(low[0, i] - lo_mc) <= max(1.0, 0.01 * lo_mc)
        assert abs(high[0, i] - hi_mc) <= max(1.0, 0.01 * hi_mc)


def test_only_what_was_reported_by_now_is_used() -> None:
    triangle, _ = _simulate(2, 30, seed=5)
    now = 20
    r = nowcast(triangle, now=now)
    later = triangle.copy()
    weeks = np.arange(30)[:, None] + np.arange(D + 1)[None, :]
    later[:, weeks > now] = later[:, weeks > now] * 3 + 11
    r2 = nowcast(later, now=now)
    for field in ("observed", "expected", "lower", "upper", "delay_pmf"):
        assert np.array_equal(getattr(r, field), getattr(r2, field)), field


def test_strata_are_independent_unless_the_delay_is_shared() -> None:
    triangle, _ = _simulate(3, 25, seed=6)
    together = nowcast(triangle, now=24)
    for s in range(3):
        alone = nowcast(triangle[s : s + 1], now=24)
        for field in ("expected", "lower", "upper", "delay_pmf"):
            assert np.array_equal(getattr(together, field)[s], getattr(alone, field)[0])
    shared = nowcast(triangle, now=24, share_delay=True)
    assert np.allclose(shared.delay_pmf, shared.delay_pmf[0])
    pooled = nowcast(triangle.sum(axis=0, keepdims=True), now=24)
    assert np.allclose(shared.delay_pmf[0], pooled.delay_pmf[0])


def test_a_wider_level_gives_a_wider_interval() -> None:
    triangle, _ = _simulate(2, 25, seed=7)
    narrow = nowcast(triangle, now=24, level=0.5)
    wide = nowcast(triangle, now=24, level=0.99)
    assert (wide.lower <= narrow.lower).all() and (wide.upper >= narrow.upper).all()


def test_the_triangle_is_built_from_a_line_list() -> None:
    onset = np.array([0, 0, 1, 1, 2, 2, 2])
    report = np.array([0, 1, 1, 9, 2, 3, 3])
    region = np.array([0, 1, 0, 0, 1, 1, 0])
    tri = reporting_triangle(onset, report, n_weeks=10, max_delay=2, stratum=region, n_strata=2)
    assert tri.counts.shape == (2, 10, 3)
    assert tri.counts[0, 0, 0] == 1 and tri.counts[1, 0, 1] == 1
    assert tri.counts[0, 1, 0] == 1 and tri.beyond[0, 1] == 1  # delay 8 > max_delay
    assert tri.counts[1, 2, 0] == 1 and tri.counts[1, 2, 1] == 1 and tri.counts[0, 2, 1] == 1
    assert tri.counts.sum() + tri.beyond.sum() == 7
    weighted = reporting_triangle([0, 0], [0, 0], 1, 0, cases=[2, 1])
    assert weighted.counts[0, 0, 0] == 3


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"onset_week": [1], "report_week": [0]}, "nowcast_report_before_onset"),
        ({"onset_week": [0], "report_week": [10]}, "nowcast_index_out_of_range"),
        ({"onset_week": [0, 1], "report_week": [0]}, "nowcast_length_mismatch"),
        ({"onset_week": [0.5], "report_week": [1]}, "nowcast_not_integer"),
        ({"onset_week": [[0]], "report_week": [[1]]}, "nowcast_not_a_vector"),
    ],
)
def test_bad_line_lists_are_refused(kwargs: dict[str, list[float]], reason: str) -> None:
    with pytest.raises(NowcastParameterError) as err:
        reporting_triangle(kwargs["onset_week"], kwargs["report_week"], n_weeks=10, max_delay=3)
    assert err.value.reason == reason
    assert (
        "record" in err.value.message or "whole" in err.value.message or "1-D" in err.value.message
    )


def _ok_triangle() -> NDArray[np.int64]:
    return _simulate(1, 20, seed=8)[0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"triangle": np.ones((20, 5))}, "nowcast_not_a_triangle"),
        ({"triangle": np.full((1, 20, 5), np.nan)}, "nowcast_missing_count"),
        ({"triangle": -np.ones((1, 20, 5))}, "nowcast_not_a_count"),
        ({"triangle": np.full((1, 20, 5), 0.5)}, "nowcast_not_a_count"),
        ({"triangle": np.zeros((1, 0, 5))}, "nowcast_empty_triangle"),
        ({"triangle": [["a"]]}, "nowcast_not_numeric"),
        ({"now": 20}, "nowcast_now_out_of_range"),
        ({"now": 10}, "nowcast_window_too_long"),
        ({"now": 1.5}, "nowcast_not_integer"),
        ({"window": 0}, "nowcast_out_of_range"),
        ({"level": 1.0}, "nowcast_level_out_of_range"),
        ({"prior_shape": 0.0}, "nowcast_prior_not_positive"),
        ({"delay_prior": float("nan")}, "nowcast_prior_not_positive"),
    ],
)
def test_bad_nowcast_input_is_refused(change: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"triangle": _ok_triangle(), "now": 19, "window": 8}
    args.update(change)
    with pytest.raises(NowcastParameterError) as err:
        nowcast(**args)  # type: ignore[arg-type]
    assert err.value.reason == reason
    assert str(err.value).endswith(f"[{reason}]")
