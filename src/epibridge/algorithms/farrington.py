"""farringtonFlexible: the Farrington / Noufaily outbreak detector, as R computes it.

Why this module exists: the hub must raise the alarms that R's
``surveillance::farringtonFlexible`` (version 1.20.3) raises on the same counts, so that
an epidemiologist can check any alarm in R, and it must do so for many series at once:
R fits 2-4 small GLMs per series and time point in a loop (16-33 ms per point). Here all
(series, time point) fits of a run are stacked into padded arrays and fitted together by
a batched copy of R's IRLS (:mod:`epibridge.algorithms.glm`); there is no per-series or
per-time-point GLM loop (only the baseline *layout*, shared by all series, is built per
time point).

At time point k (0-based column) of a series, following R step by step:

1. Reference points k, k - freq, ..., k - b * freq (integer epochs). With ``dates`` given
   (weekly dated epochs) they are the same date 1..b years earlier, snapped to the same
   weekday (the nearer candidate; ties keep the earlier-computed one, as R does), so the
   lag can be 52 or 53 weeks.
2. Baseline: ±w weeks around each past reference point (seasonal level ``no_periods``);
   with ``no_periods`` = p > 1 each gap between windows is cut into p - 1 further levels
   (remainder weeks one each to the first blocks). The current week and the
   ``past_weeks_not_included`` weeks before it, and missing counts, are dropped.
3. Quasi-Poisson log-link GLM ``y ~ 1 [+ wtime] [+ level] [+ offset(log population)]`` by
   R's IRLS. No convergence with the trend: refit without; still none: the point is
   undefined (R's NA).
4. φ = max(1, Pearson χ² / (n - p)).
5. Reweighting: Anscombe residuals s = 1.5 (y^(2/3) μ^(-1/6) - μ^(1/2)) / sqrt(φ (1 - h));
   weights c s^-2 where s > ``weights_threshold``, else c, scaled to sum to n; refit; φ again.
6. R's quirk: after the weighted refit, R overwrites the model's working weights with the
   prior weights ω, so the dispersion behind the prediction's standard error and the
   trend test is Σ ω ((y - μ)/μ)² / (n - p), unfloored. We do the same (the textbook
   value moves the FARRINGTON upper bounds on salmonella.agona by up to 54 %).
7. The trend stays if b >= 3, its t-test p-value < ``p_threshold_trend``, and the
   predicted count at k does not exceed the largest baseline count; else the whole
   fit (steps 3-6) is redone without it.
8. Thresholds, z = qnorm(1 - alpha): "delta" — power transform e (2/3, 1/2, 1),
   τ = φ + se²/μ0, U = (μ0^e + z sd)^(1/e) with sd the delta-method sd of the transformed
   count; "nbPlugin" — μ = exp(η̂), "muan" — μ = exp(η̂ + z se_η); then
   U = qnbinom(1 - alpha, size = μ/(φ - 1), prob = 1/φ) if φ > 1, else qpois(1 - alpha, μ).
9. ``limit54`` = (cases, weeks): with fewer than ``cases`` counts in the last ``weeks``
   weeks (current included), the upper bound and expected value are NaN and there is no
   alarm. Otherwise alarm iff R's score (y - f)/(U - f) > 1 and y != 0, where f is the
   predicted count (delta) or, another R quirk, the linear predictor η̂ (nbPlugin, muan).

NaN is wherever R gives NA; ``defined`` is False where R's alarm is NA (no model could
be fitted, or not monitored). A missing current count gives NaN bounds and no alarm, as
in R. ``pvalue`` is R's ``control$pvalue``: P(Y >= y) under the fitted model.

References:
    Farrington CP, Andrews NJ, Beale AD, Catchpole MA (1996). A statistical algorithm
    for the early detection of outbreaks of infectious disease. J R Stat Soc A 159(3):
    547-563.
    Noufaily A, Enki DG, Farrington P, Garthwaite P, Andrews N, Charlett A (2013). An
    improved algorithm for outbreak detection in multiple surveillance systems. Stat Med
    32(7): 1206-1222.
    Salmon M, Schumacher D, Hoehle M (2016). Monitoring count time series in R:
    aberration detection in public health surveillance. J Stat Softw 70(10): 1-35.
    R package surveillance 1.20.3, R/farringtonFlexible.R and R/algo_farrington.R.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import nbinom, norm, poisson
from scipy.stats import t as t_dist

from epibridge.algorithms.glm import (
    GlmFit,
    SharedDesign,
    fit_log_poisson_shared,
    hat_values_at,
    linkinv,
    pearson_dispersion,
)
from epibridge.model.errors import ReasonedError

ThresholdMethod = Literal["delta", "nbPlugin", "muan"]
PowerTrans = Literal["2/3", "1/2", "none"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

_EXPONENT: Final[dict[str, float]] = {"2/3": 2.0 / 3.0, "1/2": 0.5, "none": 1.0}
#: R's discrete-quantile search fuzz for lower-tail probabilities: p * (1 - 8 eps)
_QUANTILE_FUZZ: Final = 1.0 - 8.0 * float(np.finfo(np.float64).eps)
#: fits per batch x padded baseline length x columns, to bound memory (~100 MB)
_BATCH_CELLS: Final = 4_000_000


class FarringtonParameterError(ReasonedError, ValueError):
    """A parameter or input farringtonFlexible cannot use; ``reason`` says which."""


@dataclass(frozen=True)
class FarringtonControl:
    """R's ``control`` list, same names in snake case and R's defaults for each entry.

    ``past_weeks_not_included`` None means w, as in R. Presets: :data:`FARRINGTON`,
    :data:`NOUFAILY`, :data:`R_DEFAULTS`; vary them with ``dataclasses.replace``.
    """

    b: int = 5
    w: int = 3
    reweight: bool = True
    weights_threshold: float = 2.58
    alpha: float = 0.05
    trend: bool = True
    p_threshold_trend: float = 0.05
    limit54: tuple[int, int] = (5, 4)
    powertrans: PowerTrans = "2/3"
    no_periods: int = 1
    past_weeks_not_included: int | None = None
    threshold_method: ThresholdMethod = "delta"
    freq: int = 52

    @property
    def weeks_excluded(self) -> int:
        """``past_weeks_not_included`` with R's default (w) applied."""
        return self.w if self.past_weeks_not_included is None else self.past_weeks_not_included


#: farringtonFlexible's own defaults (``control = list()``).
R_DEFAULTS: Final = FarringtonControl()
#: the original Farrington et al. (1996) configuration, as in the package vignette.
FARRINGTON: Final = FarringtonControl(
    b=3, w=3, no_periods=1, weights_threshold=1.0, past_weeks_not_included=3
)
#: the improved method of Noufaily et al. (2013), as in the package vignette.
NOUFAILY: Final = FarringtonControl(
    b=5,
    w=3,
    no_periods=10,
    weights_threshold=2.58,
    past_weeks_not_included=26,
    threshold_method="nbPlugin",
    powertrans="none",
)


@dataclass(frozen=True, eq=False)
class FarringtonResult:
    """farringtonFlexible output, every array (series x time) aligned with the input.

    Columns outside the monitored range are NaN / False. ``expected`` is R's
    ``control$expected`` (the predicted count, NaN where the upper bound is), ``pvalue``
    R's ``control$pvalue``, ``score`` R's ``control$score``, ``phi`` the overdispersion
    used in the threshold, ``trend`` True where the time trend was kept. ``alarm`` is
    False where undefined; ``defined`` is False where R's alarm is NA.
    """

    control: FarringtonControl
    start: int
    stop: int
    expected: FloatArray
    upperbound: FloatArray
    pvalue: FloatArray
    score: FloatArray
    phi: FloatArray
    trend: BoolArray
    alarm: BoolArray
    defined: BoolArray


@dataclass(frozen=True, eq=False)
class _Layout:
    """The baselines of a block of time points, shared by every series."""

    times: IntArray  # (K,) monitored 0-based time points
    index: IntArray  # (K, M) baseline time indices, padded with 0
    level: IntArray  # (K, M) seasonal level 1..p, 0 = padding
    wtime: FloatArray  # (K, M) time relative to k, in steps


@dataclass(frozen=True, eq=False)
class _Fitted:
    """A batch of farringtonFlexible fits: the GLM, its columns and dispersions."""

    glm: GlmFit
    columns: BoolArray
    phi: FloatArray
    dispersion: FloatArray  # R's quirk value, used for standard errors and the trend test
    ok: BoolArray


def first_monitored(control: FarringtonControl = R_DEFAULTS) -> int:
    """R's default first time point (0-based) for integer epochs: b * freq + w."""
    return control.b * control.freq + control.w


def first_feasible(
    control: FarringtonControl, n_time: int, dates: ArrayLike | None = None
) -> int | None:
    """The first column with a complete history: :func:`first_monitored` for integer
    epochs; for dated ones the first whose reference points (whole years back, same
    weekday) all fall in the data. None if no column has one."""
    if dates is None:
        first = first_monitored(control)
        return first if first < n_time else None
    days = _as_days(dates, n_time)
    for k in range(control.w, n_time):
        try:
            _reference_points(k, control, days)
        except FarringtonParameterError:
            continue
        return k
    return None


def farrington_flexible(
    observed: ArrayLike,
    control: FarringtonControl = FARRINGTON,
    *,
    dates: ArrayLike | None = None,
    population: ArrayLike | None = None,
    start: int | None = None,
    stop: int | None = None,
) -> FarringtonResult:
    """Run farringtonFlexible on every row of ``observed`` (series x time, NaN = missing).

    ``dates`` (one per column, weekly, e.g. ``numpy.datetime64`` days) switches to R's
    dated epochs; ``population`` (series x time, > 0) adds R's population offset.
    ``start`` / ``stop`` are the 0-based monitored columns [start, stop); default from
    :func:`first_monitored` to the end.
    """
    _check_control(control)
    counts = _as_matrix(observed, "observed")
    n_series, n_time = counts.shape
    day_numbers = _as_days(dates, n_time)
    log_pop = _log_population(population, counts.shape)
    begin = first_monitored(control) if start is None else int(start)
    end = n_time if stop is None else int(stop)
    if not 0 <= begin < end <= n_time:
        raise FarringtonParameterError(
            "farrington_bad_range",
            f"need 0 <= start < stop <= {n_time} (the number of time points), got start="
            f"{begin}, stop={end}",
        )

    shape = counts.shape
    out = {name: np.full(shape, np.nan) for name in ("expected", "upper", "pvalue", "score")}
    phi_out = np.full(shape, np.nan)
    trend = np.zeros(shape, dtype=np.bool_)
    defined = np.zeros(shape, dtype=np.bool_)
    layouts = [_layout(k, control, day_numbers) for k in range(begin, end)]
    longest = max(len(idx) for idx, _, _ in layouts)
    n_cols = 2 + (control.no_periods if control.no_periods > 1 else 0)
    cells = longest * n_cols  # per fit
    per_group = max(1, _BATCH_CELLS // cells)  # series per batch
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        for low in range(0, n_series, per_group):
            group = slice(low, min(low + per_group, n_series))
            n_group = group.stop - low
            per_block = max(1, _BATCH_CELLS // (cells * n_group))  # time points per batch
            for first in range(0, len(layouts), per_block):
                times = range(begin + first, end)[:per_block]
                block = _pad(times, layouts[first : first + per_block])
                pop = None if log_pop is None else log_pop[group]
                values = _run_block(block, counts[group], pop, control)
                rows = (group, block.times)
                for name, array in out.items():
                    array[rows] = values[name]
                phi_out[rows] = values["phi"]
                trend[rows] = values["trend"] > 0
                defined[rows] = values["defined"] > 0

        enough = _enough_cases(counts, control.limit54)
        has_upper = ~np.isnan(out["upper"])
        upper = np.where(enough, out["upper"], np.nan)
        expected = np.where(enough & has_upper, out["expected"], np.nan)
        alarm = defined & enough & (out["score"] > 1.0) & (counts != 0)
    return FarringtonResult(
        control=control,
        start=begin,
        stop=end,
        expected=expected,
        upperbound=upper,
        pvalue=out["pvalue"],
        score=out["score"],
        phi=phi_out,
        trend=trend,
        alarm=alarm,
        defined=defined,
    )


# --- baseline layout (steps 1 and 2) ---------------------------------------------------


def _reference_points(k: int, control: FarringtonControl, days: IntArray | None) -> list[int]:
    """0-based indices of k and its b reference points, most recent first."""
    if days is None:
        points = [k - i * control.freq for i in range(control.b + 1)]
        if points[-1] - control.w < -1:
            raise _too_early(k, control)
        return points
    day = dt.date.fromordinal(int(days[k]))
    wanted = [_same_weekday_years_back(day, i) for i in range(control.b + 1)]
    position = {int(d): i for i, d in enumerate(days)}
    points = [position.get(d.toordinal(), -1) for d in wanted]
    if min(points) < 0 or points[-1] - control.w < -1:
        raise _too_early(k, control)
    return points


def _same_weekday_years_back(day: dt.date, years: int) -> dt.date:
    """R: seq(day, by = "-1 year") then the nearest same weekday (ties: the first found)."""
    try:
        ref = day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year: R's mktime makes it 1 March
        ref = dt.date(day.year - years, 3, 1)
    shift = ref.isoweekday() % 7 - day.isoweekday() % 7
    a = ref - dt.timedelta(days=shift)
    b = a + dt.timedelta(days=-7 if a > ref else 7)
    return b if abs((a - ref).days) > abs((b - ref).days) else a


def _layout(
    k: int, control: FarringtonControl, days: IntArray | None
) -> tuple[IntArray, IntArray, FloatArray]:
    """Baseline indices, their seasonal levels and wtime (relative to k) for time k."""
    refs = _reference_points(k, control, days)
    w, p = control.w, control.no_periods
    levels = np.zeros(k + 1, dtype=np.intp)
    levels[k - w : k + 1] = p
    for i in range(1, control.b + 1):
        ref = refs[i]
        # R assigns 1-based (ref-w):(ref+w) and silently drops index 0: a window may
        # reach one week before the data (R errors beyond that)
        levels[max(ref - w, 0) : ref + w + 1] = p
        if p != 1:
            period = refs[i - 1] - 2 * w - 1 - ref
            size, rest = divmod(period, p - 1)
            if size < 1:
                raise FarringtonParameterError(
                    "farrington_too_many_periods",
                    f"no_periods={p} cuts a gap of {period} weeks between windows into "
                    "empty blocks; use fewer periods or a smaller w",
                )
            position = ref + w + 1
            for j in range(1, p):
                length = size + (1 if j <= rest else 0)
                levels[position : position + length] = j
                position += length
    levels[max(k - control.weeks_excluded, 0) : k + 1] = 0
    index = np.flatnonzero(levels)
    if days is None:
        wtime = (index - k).astype(np.float64)
    else:
        step = float(days[1] - days[0])
        wtime = (days[index] - days[k]) / step
    return index, levels[index], wtime


def _pad(times: range, layouts: list[tuple[IntArray, IntArray, FloatArray]]) -> _Layout:
    longest = max(len(idx) for idx, _, _ in layouts)
    index = np.zeros((len(layouts), longest), dtype=np.intp)
    level = np.zeros((len(layouts), longest), dtype=np.intp)
    wtime = np.zeros((len(layouts), longest))
    for row, (idx, lev, wt) in enumerate(layouts):
        index[row, : len(idx)], level[row, : len(idx)], wtime[row, : len(idx)] = idx, lev, wt
    return _Layout(np.array(times, dtype=np.intp), index, level, wtime)


# --- the model (steps 3 to 7) ------------------------------------------------------------


def _run_block(
    layout: _Layout, counts: FloatArray, log_pop: FloatArray | None, control: FarringtonControl
) -> dict[str, FloatArray]:
    """All series x the block's time points: fit, choose the trend, threshold."""
    n_series = counts.shape[0]
    n_points, longest = layout.index.shape
    n_fits = n_series * n_points
    y = counts[:, layout.index].reshape(n_fits, longest)
    level = np.broadcast_to(layout.level, (n_series, n_points, longest)).reshape(n_fits, -1)
    mask = (level > 0) & ~np.isnan(y)
    offset = None
    offset_now = np.zeros(n_fits)
    if log_pop is not None:
        offset = log_pop[:, layout.index].reshape(n_fits, longest)
        offset_now = log_pop[:, layout.times].reshape(n_fits)
        mask &= np.isfinite(offset)
    p = control.no_periods
    n_cols = 2 + (p if p > 1 else 0)
    x = _design(layout, n_series, n_cols)
    columns = np.zeros((n_fits, n_cols), dtype=np.bool_)
    columns[:, 0] = True
    columns[:, 1] = control.trend
    if p > 1:
        for lev in range(1, p + 1):
            columns[:, 1 + lev] = (mask & (level == lev)).any(axis=1)
        # treatment contrasts: the lowest level present is the reference
        reference = np.argmax(columns[:, 2:], axis=1)
        columns[np.arange(n_fits), 2 + reference] = False
    x0 = np.zeros((n_fits, n_cols))
    x0[:, 0] = 1.0
    if p > 1:
        x0[:, 1 + p] = 1.0

    fitted = _fit_flexible(x, y, mask, columns, offset, control)
    eta0 = np.einsum("np,np->n", fitted.glm.coef, x0) + offset_now
    keep_trend = np.zeros(n_fits, dtype=np.bool_)
    with_trend = fitted.ok & fitted.columns[:, 1]
    if with_trend.any():
        keep_trend = with_trend & _trend_kept(fitted, eta0, y, mask, control)
        redo = with_trend & ~keep_trend
        if redo.any():
            no_trend = fitted.columns[redo].copy()
            no_trend[:, 1] = False
            sub = _fit_flexible(
                x.rows(redo), y[redo], mask[redo], no_trend, _rows(offset, redo), control
            )
            fitted = _overwrite(fitted, sub, redo)
            eta0 = np.einsum("np,np->n", fitted.glm.coef, x0) + offset_now

    se_eta = np.sqrt(np.einsum("np,npq,nq->n", x0, fitted.glm.cov_unscaled, x0) * fitted.dispersion)
    y_now = counts[:, layout.times].reshape(n_fits)
    upper, pvalue, score, expected = _threshold(eta0, se_eta, fitted.phi, y_now, control)
    ok = fitted.ok
    result = {
        "expected": expected,
        "upper": upper,
        "pvalue": pvalue,
        "score": score,
        "phi": fitted.phi,
        "trend": keep_trend.astype(np.float64),
        "defined": ok.astype(np.float64),
    }
    return {
        name: np.where(ok, values, np.nan if name not in {"trend", "defined"} else 0.0).reshape(
            n_series, n_points
        )
        for name, values in result.items()
    }


def _design(layout: _Layout, n_series: int, n_cols: int) -> SharedDesign:
    """The design of every fit: one matrix per distinct baseline layout (for integer
    epochs usually a single one), fits ordered series-major like the block."""
    n_points, longest = layout.index.shape
    per_point = np.zeros((n_points, longest, n_cols))
    per_point[..., 0] = 1.0
    per_point[..., 1] = layout.wtime
    for lev in range(1, n_cols - 1):
        per_point[..., 1 + lev] = layout.level == lev
    distinct, inverse = np.unique(per_point.reshape(n_points, -1), axis=0, return_inverse=True)
    matrices = distinct.reshape(-1, longest, n_cols)
    group = np.tile(np.asarray(inverse, dtype=np.intp).reshape(-1), n_series)
    return SharedDesign(matrices, group)


def _fit_flexible(
    x: SharedDesign,
    y: FloatArray,
    mask: BoolArray,
    columns: BoolArray,
    offset: FloatArray | None,
    control: FarringtonControl,
) -> _Fitted:
    """R's algo.farrington.fitGLM.flexible for a batch (steps 3 to 6)."""
    columns = columns.copy()
    glm = fit_log_poisson_shared(x, y, mask, columns, offset=offset)
    retry = ~glm.converged & columns[:, 1]
    if retry.any():
        columns[retry, 1] = False
        again = fit_log_poisson_shared(
            x.rows(retry), y[retry], mask[retry], columns[retry], offset=_rows(offset, retry)
        )
        glm = _overwrite_glm(glm, again, retry)
    ok = glm.converged & (glm.df_residual > 0)
    dispersion = pearson_dispersion(glm, y, mask)
    phi = np.fmax(dispersion, 1.0)
    if control.reweight:
        omega = mask.astype(np.float64)
        changed, weights = _reweighting(
            glm, x, y, mask & ok[:, None], phi, control.weights_threshold
        )
        # a fit whose weights all stay 1 would be refitted to exactly the same numbers
        if changed.any():
            omega[changed] = weights
            sub = fit_log_poisson_shared(
                x.rows(changed),
                y[changed],
                mask[changed],
                columns[changed],
                prior_weights=weights,
                offset=_rows(offset, changed),
            )
            glm = _overwrite_glm(glm, sub, changed)
            phi[changed] = np.fmax(pearson_dispersion(sub, y[changed], mask[changed]), 1.0)
        dispersion = pearson_dispersion(glm, y, mask, weights=omega)  # R's quirk (step 6)
    return _Fitted(glm=glm, columns=columns, phi=phi, dispersion=dispersion, ok=ok)


def _reweighting(
    glm: GlmFit,
    x: SharedDesign,
    y: FloatArray,
    mask: BoolArray,
    phi: FloatArray,
    threshold: float,
) -> tuple[BoolArray, FloatArray]:
    """Step 5: the fits whose weights change, and their new weights omega.

    Anscombe residuals above the threshold need y > 0 (else the residual is negative),
    so they are only computed there. Only the fits in ``mask`` are reweighted: the
    caller leaves out those that gave no usable fit (no residual degree of freedom),
    whose result is NA anyway. There, a baseline of one count has a hat value of 1, its
    residual is infinite, every weight 0 and gamma infinite, so R's weights would be NaN
    (and its refit would drop the count); refitting such a batch with NaN weights broke
    the shared solve of the other fits in the batch.
    """
    rows, obs = np.nonzero(mask & (y > 0))
    mu = glm.mu[rows, obs]
    hat = hat_values_at(glm, x, rows, obs)
    resid = 1.5 * (np.cbrt(y[rows, obs]) ** 2 * mu ** (-1.0 / 6.0) - np.sqrt(mu))
    s = resid / np.sqrt(phi[rows] * (1.0 - hat))
    big = s > threshold
    changed = np.zeros(len(y), dtype=np.bool_)
    changed[rows[big]] = True
    # the same arithmetic as for every row, on the changed rows only
    position = np.cumsum(changed) - 1
    inverse = np.ones((int(changed.sum()), y.shape[1]))
    inverse[position[rows[big]], obs[big]] = s[big] ** -2.0
    sub_mask = mask[changed]
    gamma = sub_mask.sum(axis=1) / np.sum(np.where(sub_mask, inverse, 0.0), axis=1)
    return changed, np.where(sub_mask, gamma[:, None] * inverse, 0.0)


def _trend_kept(
    fitted: _Fitted, eta0: FloatArray, y: FloatArray, mask: BoolArray, control: FarringtonControl
) -> BoolArray:
    """Step 7: significant trend, no extrapolation beyond the largest count, b >= 3."""
    coef = fitted.glm.coef[:, 1]
    se = np.sqrt(fitted.glm.cov_unscaled[:, 1, 1] * fitted.dispersion)
    p_value = 2.0 * t_dist.sf(np.abs(coef / se), fitted.glm.df_residual)
    largest = np.max(np.where(mask, y, -np.inf), axis=1)
    significant = np.nan_to_num(p_value, nan=1.0) < control.p_threshold_trend
    return np.asarray(
        bool(control.b >= 3) & significant & (linkinv(eta0) <= largest), dtype=np.bool_
    )


def _rows(values: FloatArray | None, rows: BoolArray) -> FloatArray | None:
    return None if values is None else values[rows]


def _overwrite_glm(base: GlmFit, sub: GlmFit, rows: BoolArray) -> GlmFit:
    for field in fields(GlmFit):
        getattr(base, field.name)[rows] = getattr(sub, field.name)
    return base


def _overwrite(base: _Fitted, sub: _Fitted, rows: BoolArray) -> _Fitted:
    _overwrite_glm(base.glm, sub.glm, rows)
    for name in ("columns", "phi", "dispersion", "ok"):
        getattr(base, name)[rows] = getattr(sub, name)
    return base


# --- thresholds (steps 8 and 9) ----------------------------------------------------------


def _threshold(
    eta0: FloatArray, se_eta: FloatArray, phi: FloatArray, y: FloatArray, control: FarringtonControl
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Upper bound, p-value P(Y >= y), score and expected count at each fit's k."""
    z = float(norm.ppf(1.0 - control.alpha))
    if control.threshold_method == "delta":
        mu0 = linkinv(eta0)
        se_mu = se_eta * mu0
        tau = phi + se_mu**2 / mu0
        e = _EXPONENT[control.powertrans]
        sd = {
            "none": np.sqrt(mu0 * tau),
            "1/2": np.sqrt(tau / 4.0),
            "2/3": np.sqrt(4.0 / 9.0 * np.cbrt(mu0) * tau),
        }[control.powertrans]
        # R sorts (lower, upper) with NA first: the upper bound is the larger finite one
        upper = np.fmax((mu0**e - z * sd) ** (1.0 / e), (mu0**e + z * sd) ** (1.0 / e))
        pvalue = _floats(norm.sf(y**e, loc=mu0**e, scale=sd))
        return upper, pvalue, (y - mu0) / (upper - mu0), mu0

    mean = np.exp(eta0) if control.threshold_method == "nbPlugin" else np.exp(eta0 + z * se_eta)
    finite = np.isfinite(mean)
    mean = np.where(finite, mean, 1.0)
    size = mean / (phi - 1.0)
    overdispersed = phi > 1.0
    level = 1.0 - control.alpha
    upper = np.where(
        overdispersed,
        _r_quantile(
            lambda q: _floats(nbinom.cdf(q, size, 1.0 / phi)),
            level,
            _floats(nbinom.ppf(level, size, 1.0 / phi)),
        ),
        _r_quantile(
            lambda q: _floats(poisson.cdf(q, mean)), level, _floats(poisson.ppf(level, mean))
        ),
    )
    pvalue = np.where(
        overdispersed,
        _floats(nbinom.sf(y - 1.0, size, 1.0 / phi)),
        _floats(poisson.sf(y - 1.0, mean)),
    )
    upper = np.where(finite, upper, np.nan)
    pvalue = np.where(finite, pvalue, np.nan)
    return upper, pvalue, (y - eta0) / (upper - eta0), np.exp(eta0)


def _r_quantile(
    cdf: Callable[[FloatArray], FloatArray], level: float, guess: FloatArray
) -> FloatArray:
    """R's discrete quantile: the smallest q with cdf(q) >= level * (1 - 8 eps).

    scipy's ppf is the starting point; the search makes its rounding R's.
    """
    target = level * _QUANTILE_FUZZ
    q = np.where(np.isfinite(guess), guess, 0.0)
    for _ in range(50):
        down = (q > 0) & (cdf(q - 1.0) >= target)
        if not down.any():
            break
        q = q - down
    for _ in range(50):
        up = cdf(q) < target
        if not up.any():
            break
        q = q + up
    return np.where(np.isnan(guess), np.nan, q)


def _enough_cases(counts: FloatArray, limit54: tuple[int, int]) -> BoolArray:
    """At least limit54[0] cases in the limit54[1] weeks ending at t (False if one of
    those weeks is NaN, as R's sum is NA; a NaN elsewhere in the series does not count)."""
    cases, weeks = limit54
    pad = np.zeros((counts.shape[0], 1))
    missing = np.isnan(counts)
    known = np.cumsum(np.concatenate([pad, np.where(missing, 0.0, counts)], axis=1), 1)
    gaps = np.cumsum(np.concatenate([pad, missing.astype(np.float64)], axis=1), 1)
    total = np.full(counts.shape, -np.inf)
    window = known[:, weeks:] - known[:, :-weeks]
    complete = (gaps[:, weeks:] - gaps[:, :-weeks]) == 0
    total[:, weeks - 1 :] = np.where(complete, window, -np.inf)
    return np.asarray(total >= cases, dtype=np.bool_)


def _floats(values: object) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


# --- input checks ------------------------------------------------------------------------


def _too_early(k: int, control: FarringtonControl) -> FarringtonParameterError:
    return FarringtonParameterError(
        "farrington_start_too_early",
        f"time point {k} has no complete history of b={control.b} years plus w={control.w} "
        "weeks before it (R: 'Some reference time points did not exist'); start later "
        f"(for integer epochs at >= {first_monitored(control)}) or decrease b",
    )


def _check_control(control: FarringtonControl) -> None:
    problems: list[tuple[str, str]] = []
    for name in ("b", "w", "no_periods", "freq"):
        value = getattr(control, name)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            problems.append(("farrington_bad_integer", f"{name} must be a whole number >= 1"))
    if control.weeks_excluded < 0:
        problems.append(("farrington_bad_integer", "past_weeks_not_included must be >= 0"))
    if not 0.0 < control.alpha < 0.5:
        problems.append(("farrington_alpha_out_of_range", "alpha must lie in (0, 0.5)"))
    if control.threshold_method not in get_args(ThresholdMethod):
        problems.append(
            ("farrington_unknown_threshold_method", "threshold_method: delta, nbPlugin or muan")
        )
    if control.powertrans not in get_args(PowerTrans):
        problems.append(("farrington_unknown_powertrans", "powertrans: '2/3', '1/2' or 'none'"))
    cases, weeks = control.limit54
    if not (cases >= 0 and weeks > 0):
        problems.append(
            ("farrington_bad_limit54", "limit54 must be (cases >= 0, weeks > 0), as in R")
        )
    if problems:
        reason, message = problems[0]
        raise FarringtonParameterError(reason, f"{message}; got {control}")


def _as_matrix(values: ArrayLike, name: str) -> FloatArray:
    try:
        matrix = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FarringtonParameterError(
            "farrington_not_numeric", f"{name} must be numbers (NaN for missing): {exc}"
        ) from exc
    if matrix.ndim != 2:
        raise FarringtonParameterError(
            "farrington_not_a_matrix",
            f"{name} must be a 2-D (series x time) array, got {matrix.ndim} dimension(s); "
            "wrap a single series as values[np.newaxis, :]",
        )
    if np.isinf(matrix).any() or (matrix < 0).any():
        raise FarringtonParameterError(
            "farrington_bad_count", f"{name} holds a negative or infinite value; NaN = missing"
        )
    return matrix


def _as_days(dates: ArrayLike | None, n_time: int) -> IntArray | None:
    """Dates as proleptic ordinals (datetime.date.toordinal), checked to be regular."""
    if dates is None:
        return None
    try:
        days = np.array(dates, dtype="datetime64[D]").astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise FarringtonParameterError(
            "farrington_bad_dates", f"dates must be calendar dates (YYYY-MM-DD): {exc}"
        ) from exc
    if days.shape != (n_time,) or n_time < 2 or not (np.diff(days) > 0).all():
        raise FarringtonParameterError(
            "farrington_bad_dates",
            f"dates must be {n_time} increasing dates, one per time point (column)",
        )
    unix_epoch = dt.date(1970, 1, 1).toordinal()
    return (days + unix_epoch).astype(np.intp)


def _log_population(population: ArrayLike | None, shape: tuple[int, ...]) -> FloatArray | None:
    if population is None:
        return None
    pop = _as_matrix(population, "population")
    if pop.shape != shape or (pop <= 0).any():
        raise FarringtonParameterError(
            "farrington_bad_population",
            f"population must be a positive (series x time) array of shape {shape}",
        )
    return np.log(pop)
