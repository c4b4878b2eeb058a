"""Many small Poisson / quasi-Poisson log-link GLMs fitted at once, as R's ``glm.fit`` does.

Why this module exists: farringtonFlexible fits two to four small GLMs per series and
time point. R loops over them, one ``glm()`` call each (16-33 ms per point); we stack
every fit into padded arrays and run R's iteratively reweighted least squares (IRLS) on
all of them together, solving the small normal equations with one batched
``np.linalg.solve`` per iteration. Fits that have converged are frozen; the others go on.

To reproduce R's numbers (not merely the same maximum), the iteration is R's own:

* start ``mu = y + 0.1`` (the poisson / quasipoisson ``initialize``), ``eta = log(mu)``;
* inverse link and its derivative floored at machine epsilon (``pmax(exp(eta), eps)``);
* working weights ``w = prior * mu`` and working response ``z = eta - offset + (y - mu) / mu``
  from the *current* mu, then one weighted least-squares solve, then the new eta and mu;
* stop when ``|dev - dev_old| / (|dev| + 0.1) < epsilon`` (1e-8) or after ``maxit`` (25).

R keeps the working weights and the QR decomposition of the *last solve*, i.e. computed
from the mu before the final update, while ``mu`` and the residuals are the final ones;
hat values, dispersion and standard errors are built from that mix, and so are ours
(``working_weights`` and ``cov_unscaled`` below).

Shapes: N fits, M padded observations, P columns. ``mask`` marks real observations;
``columns`` marks the columns each fit uses. An unused column (a trend left out, a
factor level absent or chosen as reference) is zeroed and gets a 1 on the diagonal of the
normal equations, so its coefficient is exactly 0 and the other columns are fitted as if
it did not exist: one array shape serves fits with different model formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

EPS: Final = float(np.finfo(np.float64).eps)
#: glm.control() defaults
EPSILON: Final = 1e-8
MAXIT: Final = 25


@dataclass(frozen=True, eq=False)
class GlmFit:
    """The state R's ``glm.fit`` returns, for N fits (see the module docstring)."""

    coef: FloatArray  # (N, P); 0 for unused columns
    mu: FloatArray  # (N, M) final fitted means; meaningless where not masked
    working_weights: FloatArray  # (N, M) prior * mu of the last solve; 0 where not masked
    cov_unscaled: FloatArray  # (N, P, P) (X' W X)^-1 of the last solve; 0 for unused columns
    converged: BoolArray  # (N,)
    df_residual: FloatArray  # (N,) observations minus used columns


def linkinv(eta: FloatArray) -> FloatArray:
    """R's ``poisson()$linkinv`` and ``$mu.eta`` for the log link: exp floored at eps."""
    return np.maximum(np.exp(eta), EPS)


def _deviance(y: FloatArray, mu: FloatArray, prior: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y > 0, y * np.log(y / mu), 0.0)
    return np.asarray(np.sum(2.0 * prior * (ylogy - (y - mu)), axis=-1), dtype=np.float64)


def _solve(lhs: FloatArray, rhs: FloatArray) -> FloatArray:
    """Batched solve of the normal equations; a degenerate system falls back to pinv."""
    try:
        solved = np.linalg.solve(lhs, rhs[..., None])
    except np.linalg.LinAlgError:
        solved = np.matmul(np.linalg.pinv(lhs), rhs[..., None])
    return np.asarray(solved[..., 0], dtype=np.float64)


def fit_log_poisson(
    x: FloatArray,
    y: FloatArray,
    mask: BoolArray,
    columns: BoolArray,
    prior_weights: FloatArray | None = None,
    offset: FloatArray | None = None,
    epsilon: float = EPSILON,
    maxit: int = MAXIT,
) -> GlmFit:
    """Fit N log-link Poisson-family GLMs by R's IRLS; see the module docstring."""
    n_fits, _, n_cols = x.shape
    design = np.where(mask[..., None] & columns[:, None, :], x, 0.0)
    prior = np.where(mask, 1.0 if prior_weights is None else prior_weights, 0.0)
    response = np.where(mask, y, 0.0)
    off = np.zeros_like(response) if offset is None else np.where(mask, offset, 0.0)
    fill = np.zeros((n_fits, n_cols, n_cols))
    diag = np.arange(n_cols)
    fill[:, diag, diag] = (~columns).astype(np.float64)

    mu = response + 0.1
    eta = np.log(mu)
    dev_old = _deviance(response, mu, prior)
    coef = np.zeros((n_fits, n_cols))
    weights = np.zeros_like(response)
    normal = np.array(fill, copy=True)
    converged = np.zeros(n_fits, dtype=np.bool_)
    # the still-iterating fits, compacted: gathered again only when some converge
    active = np.arange(n_fits)
    xa, pa, ya, oa, fa = design, prior, response, off, fill
    mu_a, eta_a, dev_a = mu, eta, dev_old
    for _ in range(maxit):
        mu_eta = linkinv(eta_a)
        z = eta_a - oa + (ya - mu_a) / mu_eta
        w = pa * mu_eta**2 / mu_a
        xt = xa.transpose(0, 2, 1)
        lhs = np.matmul(xt * w[:, None, :], xa) + fa
        rhs = np.matmul(xt, (w * z)[..., None])[..., 0]
        beta = _solve(lhs, rhs)
        eta_a = np.matmul(xa, beta[..., None])[..., 0] + oa
        mu_a = linkinv(eta_a)
        dev = _deviance(ya, mu_a, pa)
        coef[active], weights[active], normal[active], mu[active] = beta, w, lhs, mu_a
        done = np.abs(dev - dev_a) / (np.abs(dev) + 0.1) < epsilon
        dev_a = dev
        if done.any():
            converged[active[done]] = True
            going = ~done
            if not going.any():
                break
            active = active[going]
            xa, pa, ya, oa, fa = xa[going], pa[going], ya[going], oa[going], fa[going]
            mu_a, eta_a, dev_a = mu_a[going], eta_a[going], dev_a[going]

    try:
        cov = np.asarray(np.linalg.inv(normal), dtype=np.float64)
    except np.linalg.LinAlgError:  # a degenerate fit (no data for a column): least squares
        cov = np.asarray(np.linalg.pinv(normal), dtype=np.float64)
    cov *= columns[:, :, None] & columns[:, None, :]
    used = columns.sum(axis=1)
    return GlmFit(
        coef=coef,
        mu=mu,
        working_weights=np.where(mask, weights, 0.0),
        cov_unscaled=cov,
        converged=converged,
        df_residual=(mask.sum(axis=1) - used).astype(np.float64),
    )


def hat_values(fit: GlmFit, x: FloatArray, mask: BoolArray, columns: BoolArray) -> FloatArray:
    """Diagonal of the hat matrix, as R's ``hatvalues()`` (values within 10 eps of 1 are 1)."""
    design = np.where(mask[..., None] & columns[:, None, :], x, 0.0)
    quad = np.sum(np.matmul(design, fit.cov_unscaled) * design, axis=-1)
    hat = fit.working_weights * quad
    return np.where(hat > 1.0 - 10.0 * EPS, 1.0, hat)


def pearson_dispersion(
    fit: GlmFit, y: FloatArray, mask: BoolArray, weights: FloatArray | None = None
) -> FloatArray:
    """R's ``summary.glm`` dispersion: sum(weights * ((y - mu) / mu)^2) / df_residual.

    ``weights`` defaults to the fit's working weights (the textbook Pearson statistic);
    farringtonFlexible's quirk passes the prior weights instead (see farrington.py).
    """
    used = fit.working_weights if weights is None else np.where(mask, weights, 0.0)
    resid = np.where(mask, (np.where(mask, y, 0.0) - fit.mu) / fit.mu, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.sum(used * resid**2, axis=1) / fit.df_residual, dtype=np.float64)
