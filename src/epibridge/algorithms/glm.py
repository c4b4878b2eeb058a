"""Many small Poisson / quasi-Poisson log-link GLMs fitted at once, as R's ``glm.fit`` does.

Why this module exists: farringtonFlexible fits two to four small GLMs per series and
time point. R loops over them, one ``glm()`` call each (16-33 ms per point); we stack
every fit into padded arrays and run R's iteratively reweighted least squares (IRLS) on
all of them together. Fits that have converged are frozen; the others go on.

Two fitters compute the same iterates: :func:`fit_log_poisson` writes R's loop out
plainly (one design per fit, one batched ``np.linalg.solve`` per iteration; glrnb's
fitter, and the reference the tests hold the other to), :func:`fit_log_poisson_shared`
is the fast one farringtonFlexible uses (below).

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

How :func:`fit_log_poisson_shared` is fast (the iterates are R's, only the arithmetic is
rearranged):

* After the first solve, eta - offset = X beta, so the weighted least-squares solution is
  ``beta + (X' W X)^-1 X' prior (y - mu)`` (the Newton step): each iteration needs only
  ``X' W X``, ``X' W 1`` and ``sum(W)``, all read off the products of the weights with
  the fixed features [1, X, X (x) X]. The deviance then costs no logarithm:
  ``sum prior (y log y - y eta - y + mu)`` is a per-fit constant, ``(X' prior y) . beta``
  and ``sum(W)`` (points where mu hit its floor are corrected exactly).
* Design matrices are usually shared: every fit of one farringtonFlexible run at the same
  baseline layout has the same X. :class:`SharedDesign` holds the distinct matrices once
  and each fit's index into them; the products are ``np.einsum`` sums against the stored
  matrix, whose fixed order of addition makes a fit's numbers independent of the other
  fits in its batch (BLAS matrix products do not promise that).
* Converged fits are dropped from the working arrays once an eighth of them are done.
* A fit whose linear predictor is the same at every observation throughout - an
  intercept-only model, or all counts zero with an intercept in the model (the working
  response is then constant, so every solve only moves the intercept) - follows R's
  iteration on scalars: mu, the deviance and the step are per-fit numbers.
* 2 x 2 normal equations are solved in closed form; larger ones by ``np.linalg.solve``.

Shapes: N fits, M padded observations, P columns. ``mask`` marks real observations;
``columns`` marks the columns each fit uses. An unused column (a trend left out, a
factor level absent or chosen as reference) gets a 1 on the diagonal of the normal
equations and a 0 on their right-hand side, so its coefficient is exactly 0 and the other
columns are fitted as if it did not exist: one array shape serves fits with different
model formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.special import xlogy

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

EPS: Final = float(np.finfo(np.float64).eps)
LOG_EPS: Final = float(np.log(EPS))
_LOG_TENTH: Final = float(np.log(0.1))  # log of R's start mu for a zero count
#: glm.control() defaults
EPSILON: Final = 1e-8
MAXIT: Final = 25
#: above this many distinct design matrices, products are formed fit by fit
_MAX_GROUPS: Final = 64


@dataclass(frozen=True, eq=False)
class GlmFit:
    """The state R's ``glm.fit`` returns, for N fits (see the module docstring)."""

    coef: FloatArray  # (N, P); 0 for unused columns
    mu: FloatArray  # (N, M) final fitted means; meaningless where not masked
    working_weights: FloatArray  # (N, M) prior * mu of the last solve; 0 where not masked
    cov_unscaled: FloatArray  # (N, P, P) (X' W X)^-1 of the last solve; 0 for unused columns
    converged: BoolArray  # (N,)
    df_residual: FloatArray  # (N,) observations minus used columns


@dataclass(frozen=True, eq=False)
class SharedDesign:
    """The design matrices of N fits, each distinct one stored once.

    Fit n's (M, P) design is ``matrices[group[n]]``. Rows and columns a fit does not use
    are ignored through ``mask`` and ``columns``, so fits that differ only in those share
    a matrix.
    """

    matrices: FloatArray  # (G, M, P)
    group: IntArray  # (N,) index into matrices

    @classmethod
    def of(cls, x: FloatArray) -> SharedDesign:
        """One matrix per fit from an (N, M, P) array; a broadcast view (zero stride
        along N, as ``np.broadcast_to`` makes) becomes a single shared matrix."""
        n_fits = x.shape[0]
        if n_fits > 1 and x.strides[0] == 0:
            return cls(np.array(x[:1], dtype=np.float64), np.zeros(n_fits, dtype=np.intp))
        return cls(np.asarray(x, dtype=np.float64), np.arange(n_fits, dtype=np.intp))

    @property
    def n_cols(self) -> int:
        return int(self.matrices.shape[2])

    def rows(self, keep: BoolArray | IntArray) -> SharedDesign:
        """The design of a subset of the fits (boolean mask or indices)."""
        return SharedDesign(self.matrices, self.group[keep])

    def expanded(self) -> FloatArray:
        """The (N, M, P) array of every fit's design."""
        return np.asarray(self.matrices[self.group], dtype=np.float64)


def linkinv(eta: FloatArray) -> FloatArray:
    """R's ``poisson()$linkinv`` and ``$mu.eta`` for the log link: exp floored at eps."""
    return np.maximum(np.exp(eta), EPS)


def _rowdot(a: FloatArray, b: FloatArray) -> FloatArray:
    """sum(a * b) along each row."""
    return np.asarray(np.einsum("ij,ij->i", a, b), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class _Start:
    """R's start ``mu = y + 0.1``, ``eta = log(mu)`` and per-fit sums built on it.

    With mu0 = y + 0.1, the start deviance is 2 sum prior (y log y - y eta0 + 0.1), so
    two logarithms per observation serve the deviance, the first solve and the
    deviance constant of every later iteration.
    """

    eta: FloatArray  # (n, M) log(y + 0.1)
    total_prior: FloatArray  # sum prior
    total_y: FloatArray  # sum prior y
    constant: FloatArray  # sum prior (y log y - y)
    deviance: FloatArray  # the deviance at mu0
    weighted_eta: FloatArray  # sum prior mu0 eta0

    @classmethod
    def of(cls, y: FloatArray, prior: FloatArray) -> _Start:
        total_prior = prior.sum(axis=1)
        if (y > 0).any():
            eta = np.log(y + 0.1)
            total_y = _rowdot(prior, y)
            total_ylogy = _rowdot(prior, np.asarray(xlogy(y, y), dtype=np.float64))
            total_yeta = _rowdot(prior, y * eta)
        else:  # no counts at all (common in sparse surveillance data): no logarithm needed
            eta = np.full(y.shape, _LOG_TENTH)
            total_y = total_ylogy = total_yeta = np.zeros(len(y))
        return cls(
            eta=eta,
            total_prior=total_prior,
            total_y=total_y,
            constant=total_ylogy - total_y,
            deviance=2.0 * (total_ylogy - total_yeta + 0.1 * total_prior),
            weighted_eta=total_yeta + 0.1 * _rowdot(prior, eta),
        )


# --- products with the design -------------------------------------------------------


class _Products:
    """Weighted sums over the observations of N fits with a shared design.

    The fits are kept sorted by design group, so each group is a contiguous slice and its
    products are row-by-vector products with that group's features [1, X, X (x) X],
    each distinct feature column once (with an intercept, [1, t, t^2] for two columns).
    They are ``np.einsum`` sums, which add every fit's observations in the same order
    whatever the other fits in the batch, so a fit's result does not depend on its batch
    (BLAS matrix products do not guarantee that).
    """

    def __init__(self, design: SharedDesign) -> None:
        self.matrices = design.matrices
        self.n_cols = design.n_cols
        self.per_fit = self.matrices.shape[0] > _MAX_GROUPS
        if not self.per_fit:
            x = self.matrices
            n_groups, n_obs, p = x.shape
            products = (x[:, :, :, None] * x[:, :, None, :]).reshape(n_groups, n_obs, p * p)
            ones = np.ones((n_groups, n_obs, 1))
            features = np.concatenate([ones, x, products], axis=2)
            flat = features.reshape(n_groups * n_obs, -1)
            unique, inverse = np.unique(flat, axis=1, return_inverse=True)
            # (G, K, M): one contiguous row per distinct feature
            self.features = np.ascontiguousarray(
                unique.reshape(n_groups, n_obs, -1).transpose(0, 2, 1)
            )
            self.inverse = np.asarray(inverse, dtype=np.intp).reshape(-1)
            self.columns = np.ascontiguousarray(x.transpose(0, 2, 1))  # (G, P, M)
            self.outer = np.ascontiguousarray(products.transpose(0, 2, 1))  # (G, P*P, M)

    def _slices(self, group: IntArray) -> list[tuple[int, slice]]:
        if len(group) == 0:
            return []
        cuts = np.flatnonzero(group[1:] != group[:-1]) + 1
        starts = np.concatenate([[0], cuts])
        stops = np.concatenate([cuts, [len(group)]])
        return [(int(group[a]), slice(int(a), int(b))) for a, b in zip(starts, stops, strict=True)]

    @staticmethod
    def _dots(v: FloatArray, vectors: FloatArray, out: FloatArray) -> None:
        """out[:, k] = v @ vectors[k], column by column."""
        for k, vector in enumerate(vectors):
            out[:, k] = np.einsum("nm,m->n", v, vector)

    def sums(self, group: IntArray, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """sum(v), X' v and X' diag(v) X per fit: (n,), (n, P), (n, P, P)."""
        p = self.n_cols
        if self.per_fit:
            x = self.matrices[group]
            xt = x.transpose(0, 2, 1)
            xv = np.matmul(xt, v[..., None])[..., 0]
            return v.sum(axis=1), xv, np.matmul(xt * v[:, None, :], x)
        unique = np.empty((len(group), self.features.shape[1]))
        for g, rows in self._slices(group):
            self._dots(v[rows], self.features[g], unique[rows])
        out = unique[:, self.inverse]
        return out[:, 0], out[:, 1 : 1 + p], out[:, 1 + p :].reshape(-1, p, p)

    def xv(self, group: IntArray, v: FloatArray) -> FloatArray:
        """X' v per fit, (n, P)."""
        if self.per_fit:
            return np.asarray(
                np.matmul(self.matrices[group].transpose(0, 2, 1), v[..., None])[..., 0],
                dtype=np.float64,
            )
        out = np.empty((len(group), self.n_cols))
        for g, rows in self._slices(group):
            self._dots(v[rows], self.columns[g], out[rows])
        return out

    def linear(self, group: IntArray, beta: FloatArray) -> FloatArray:
        """X beta per fit, (n, M)."""
        if self.per_fit:
            return np.asarray(
                np.matmul(self.matrices[group], beta[..., None])[..., 0], dtype=np.float64
            )
        out = np.empty((len(group), self.matrices.shape[1]))
        for g, rows in self._slices(group):
            out[rows] = np.einsum("np,pm->nm", beta[rows], self.columns[g])
        return out

    def quadratic(self, group: IntArray, matrix: FloatArray) -> FloatArray:
        """x_m' A x_m at every observation m of each fit, for (n, P, P) matrices A."""
        if self.per_fit:
            x = self.matrices[group]
            return np.asarray(np.sum(np.matmul(x, matrix) * x, axis=-1), dtype=np.float64)
        flat = matrix.reshape(len(group), -1)
        out = np.empty((len(group), self.matrices.shape[1]))
        for g, rows in self._slices(group):
            out[rows] = np.einsum("nk,km->nm", flat[rows], self.outer[g])
        return out


# --- small linear systems -------------------------------------------------------------


def _with_unused(normal: FloatArray, unused: BoolArray) -> FloatArray:
    """Unused columns: zero row and column, 1 on the diagonal (coefficient exactly 0)."""
    if unused.any():
        normal[unused[:, :, None] | unused[:, None, :]] = 0.0
        diag = np.arange(normal.shape[1])
        normal[:, diag, diag] += unused
    return normal


def _solve(lhs: FloatArray, rhs: FloatArray) -> FloatArray:
    """Batched solve of the normal equations; a degenerate system falls back to pinv."""
    if lhs.shape[1] == 2:
        a, b, c = lhs[:, 0, 0], lhs[:, 0, 1], lhs[:, 1, 1]
        det = a * c - b * b
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.stack(
                [(c * rhs[:, 0] - b * rhs[:, 1]) / det, (a * rhs[:, 1] - b * rhs[:, 0]) / det],
                axis=1,
            )
        bad = ~np.isfinite(out).all(axis=1) | (det == 0.0)
        if bad.any():
            out[bad] = np.matmul(np.linalg.pinv(lhs[bad]), rhs[bad][..., None])[..., 0]
        return out
    try:
        solved = np.linalg.solve(lhs, rhs[..., None])
    except np.linalg.LinAlgError:
        solved = np.matmul(np.linalg.pinv(lhs), rhs[..., None])
    return np.asarray(solved[..., 0], dtype=np.float64)


def _inverse(normal: FloatArray) -> FloatArray:
    """Batched inverse; a degenerate fit (no data for a column) falls back to pinv."""
    if normal.shape[1] == 2:
        a, b, c = normal[:, 0, 0], normal[:, 0, 1], normal[:, 1, 1]
        det = a * c - b * b
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.stack([np.stack([c, -b], axis=1), np.stack([-b, a], axis=1)], axis=1)
            out /= det[:, None, None]
        bad = ~np.isfinite(out).all(axis=(1, 2)) | (det == 0.0)
        if bad.any():
            out[bad] = np.linalg.pinv(normal[bad])
        return out
    try:
        return np.asarray(np.linalg.inv(normal), dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.pinv(normal), dtype=np.float64)


# --- the fit ----------------------------------------------------------------------------


@dataclass
class _State:
    """The final state of each fit, filled in as fits converge (or run out)."""

    coef: FloatArray
    mu: FloatArray
    weights: FloatArray
    normal: FloatArray
    converged: BoolArray

    def record(
        self,
        where: IntArray,
        coef: FloatArray,
        mu: FloatArray,
        weights: FloatArray,
        normal: FloatArray,
        converged: BoolArray,
        rows: BoolArray,
    ) -> None:
        """Store the ``rows`` of a batch of fits as fits ``where`` of the result."""
        self.coef[where] = coef[rows]
        self.mu[where] = mu[rows]
        self.weights[where] = weights[rows]
        self.normal[where] = normal[rows]
        self.converged[where] = converged[rows]


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
    """Fit N log-link Poisson-family GLMs by R's IRLS, written out plainly: one design per
    fit, the working response and one batched ``np.linalg.solve`` per iteration, the
    deviance from R's ``dev.resids``. :func:`fit_log_poisson_shared` computes the same
    iterates faster; this one is its reference (and glrnb's fitter)."""
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
        beta = _solve_plain(lhs, rhs)
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


def _deviance(y: FloatArray, mu: FloatArray, prior: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y > 0, y * np.log(y / mu), 0.0)
    return np.asarray(np.sum(2.0 * prior * (ylogy - (y - mu)), axis=-1), dtype=np.float64)


def _solve_plain(lhs: FloatArray, rhs: FloatArray) -> FloatArray:
    """Batched solve of the normal equations; a degenerate system falls back to pinv."""
    try:
        solved = np.linalg.solve(lhs, rhs[..., None])
    except np.linalg.LinAlgError:
        solved = np.matmul(np.linalg.pinv(lhs), rhs[..., None])
    return np.asarray(solved[..., 0], dtype=np.float64)


def fit_log_poisson_shared(
    design: SharedDesign,
    y: FloatArray,
    mask: BoolArray,
    columns: BoolArray,
    prior_weights: FloatArray | None = None,
    offset: FloatArray | None = None,
    epsilon: float = EPSILON,
    maxit: int = MAXIT,
) -> GlmFit:
    """Fit N log-link Poisson-family GLMs by R's IRLS, the fast way (see the module
    docstring): the same iterates as :func:`fit_log_poisson`, designs given as a
    :class:`SharedDesign`. ``mu`` is 1 where not masked."""
    n_fits, n_obs = y.shape
    n_cols = design.n_cols
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        prior = np.where(mask, 1.0 if prior_weights is None else prior_weights, 0.0)
        response = np.where(mask, y, 0.0)
        off = None if offset is None else np.where(mask, offset, 0.0)
        state = _State(
            coef=np.zeros((n_fits, n_cols)),
            mu=np.ones((n_fits, n_obs)),
            weights=np.zeros((n_fits, n_obs)),
            normal=np.zeros((n_fits, n_cols, n_cols)),
            converged=np.zeros(n_fits, dtype=np.bool_),
        )
        products = _Products(design)
        intercept = _intercept_column(design.matrices, design.group, columns)
        scalar = np.zeros(n_fits, dtype=np.bool_)
        if off is None:
            only_intercept = columns.sum(axis=1) == 1
            no_cases = ~(response > 0).any(axis=1)
            scalar = (intercept >= 0) & (only_intercept | no_cases)
        if scalar.any():
            rows = np.flatnonzero(scalar)
            weights = _scalar_irls(
                rows, intercept[rows], response[rows], prior[rows], epsilon, maxit, state
            )
            # the normal equations of the last solve, with every used column
            sums = products.sums(design.group[rows], weights)[2]
            state.normal[rows] = _with_unused(sums, ~columns[rows])
        general = np.flatnonzero(~scalar)
        if len(general):
            order = general[np.argsort(design.group[general], kind="stable")]
            _general_irls(
                order,
                design.group[order],
                products,
                response[order],
                prior[order],
                None if off is None else off[order],
                columns[order],
                epsilon,
                maxit,
                state,
            )
        cov = _inverse(_with_unused(state.normal, ~columns))
        cov *= columns[:, :, None] & columns[:, None, :]
        weights = np.where(mask, state.weights, 0.0)
        mu = np.where(mask, state.mu, 1.0)
    used = columns.sum(axis=1)
    return GlmFit(
        coef=state.coef,
        mu=mu,
        working_weights=weights,
        cov_unscaled=cov,
        converged=state.converged,
        df_residual=(mask.sum(axis=1) - used).astype(np.float64),
    )


def _intercept_column(matrices: FloatArray, group: IntArray, columns: BoolArray) -> IntArray:
    """Per fit, a used column that is 1 at every observation of its design, else -1."""
    constant = (matrices == 1.0).all(axis=1)[group] & columns  # (N, P)
    return np.where(constant.any(axis=1), np.argmax(constant, axis=1), -1).astype(np.intp)


def _scalar_irls(
    rows: IntArray,
    intercept: IntArray,
    y: FloatArray,
    prior: FloatArray,
    epsilon: float,
    maxit: int,
    state: _State,
) -> FloatArray:
    """R's IRLS for fits whose eta is one number per fit (see the module docstring);
    returns their working weights of the last solve."""
    start = _Start.of(y, prior)
    # the first solve: sum(w z) / sum(w), z = eta0 + (y - mu0) / mu0
    beta = (start.weighted_eta - 0.1 * start.total_prior) / (
        start.total_y + 0.1 * start.total_prior
    )
    dev_old = start.deviance
    total_prior, total_y, constant = start.total_prior, start.total_y, start.constant
    last_mu = np.full(len(rows), np.nan)  # mu of the last solve: None -> the start mu0
    going = np.ones(len(rows), dtype=np.bool_)
    converged = np.zeros(len(rows), dtype=np.bool_)
    final_mu = np.zeros(len(rows))
    for iteration in range(1, maxit + 1):
        mu = np.maximum(np.exp(beta), EPS)
        dev = 2.0 * (constant - total_y * np.log(mu) + total_prior * mu)
        done = going & (np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < epsilon)
        converged |= done
        final_mu = np.where(going, mu, final_mu)
        going &= ~done
        if iteration == maxit or not going.any():
            break
        step = np.where(going, (total_y - total_prior * mu) / (total_prior * mu), 0.0)
        last_mu = np.where(going, mu, last_mu)
        beta = beta + step
        dev_old = dev
    weights: FloatArray = prior * last_mu[:, None]
    first = np.flatnonzero(np.isnan(last_mu))  # converged right after the first solve
    if len(first):
        weights[first] = prior[first] * (y[first] + 0.1)
    state.coef[rows, intercept] = beta
    state.mu[rows] = final_mu[:, None]
    state.weights[rows] = weights
    state.converged[rows] = converged
    return weights


def _general_irls(
    rows: IntArray,
    group: IntArray,
    products: _Products,
    y: FloatArray,
    prior: FloatArray,
    off: FloatArray | None,
    columns: BoolArray,
    epsilon: float,
    maxit: int,
    state: _State,
) -> None:
    """R's IRLS in Newton form for fits sorted by design group."""
    unused = ~columns
    start = _Start.of(y, prior)
    dev_old = start.deviance
    w, normal, beta = _first_solve(group, products, y, prior, off, unused, start)
    # per-fit constants of the deviance: sum prior (y log y - y), X' prior y, prior y . off
    py = prior * y
    constant = start.constant
    xpy = products.xv(group, py)
    pyoff = np.zeros(len(rows)) if off is None else _rowdot(py, off)

    unit = bool(np.all(prior == 1.0))  # then the working weights are mu itself
    live = np.ones(len(rows), dtype=np.bool_)  # not yet finished (finished rows idle along)
    for iteration in range(1, maxit + 1):
        eta = products.linear(group, beta)
        if off is not None:
            eta += off
        mu = np.exp(eta)
        np.maximum(mu, EPS, out=mu)
        w_new = mu if unit else prior * mu
        total, xw, xwx = products.sums(group, w_new)
        bad = ~np.isfinite(total)
        if bad.any() and not unit:  # an overflow at an observation without weight: 0 * inf
            w_new[bad] = np.where(prior[bad] > 0, w_new[bad], 0.0)
            total[bad], xw[bad], xwx[bad] = products.sums(group[bad], w_new[bad])
        dev = 2.0 * (constant - np.sum(xpy * beta, axis=1) - pyoff + total)
        floored = eta.min(axis=1) < LOG_EPS + 1.0  # mu floored at eps: log(mu) is not eta
        if floored.any():
            at = np.flatnonzero(floored)
            gap = np.where(py[at] > 0, py[at] * (eta[at] - np.log(mu[at])), 0.0)
            dev[at] += 2.0 * gap.sum(axis=1)
        done = live & (np.abs(dev - dev_old) / (np.abs(dev) + 0.1) < epsilon)
        last = iteration == maxit
        if done.any() or last:
            finished = (live & last) | done
            state.record(rows[finished], beta, mu, w, normal, done, finished)
            live &= ~finished
            if last or not live.any():
                break
            if live.sum() < 0.875 * len(live):  # drop the finished rows from the arrays
                keep = live
                rows, group, prior, py = rows[keep], group[keep], prior[keep], py[keep]
                off = None if off is None else off[keep]
                unused, beta, xpy, pyoff = unused[keep], beta[keep], xpy[keep], pyoff[keep]
                constant, dev, w_new = constant[keep], dev[keep], w_new[keep]
                total, xw, xwx = total[keep], xw[keep], xwx[keep]
                live = live[keep]
        normal = _with_unused(xwx, unused)
        gradient = xpy - xw
        gradient[unused] = 0.0
        beta = beta + _solve(normal, gradient)
        w = w_new
        dev_old = dev


def _first_solve(
    group: IntArray,
    products: _Products,
    y: FloatArray,
    prior: FloatArray,
    off: FloatArray | None,
    unused: BoolArray,
    start: _Start,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """R's first weighted least-squares solve, from the start values (eta is not yet
    X beta): its working weights, normal equations and coefficients."""
    w = prior * (y + 0.1)
    _, _, normal = products.sums(group, w)
    normal = _with_unused(normal, unused)
    wz = w * start.eta - 0.1 * prior  # w z with z = eta0 + (y - mu0) / mu0, mu0 = y + 0.1
    if off is not None:
        wz -= w * off
    rhs = products.xv(group, wz)
    rhs[unused] = 0.0
    return w, normal, _solve(normal, rhs)


def hat_values(fit: GlmFit, x: FloatArray, mask: BoolArray, columns: BoolArray) -> FloatArray:
    """Diagonal of the hat matrix, as R's ``hatvalues()`` (values within 10 eps of 1 are 1)."""
    return hat_values_shared(fit, SharedDesign.of(x), mask, columns)


def hat_values_shared(
    fit: GlmFit, design: SharedDesign, mask: BoolArray, columns: BoolArray
) -> FloatArray:
    """:func:`hat_values` with the designs given as a :class:`SharedDesign`.

    Unused columns and rows drop out by themselves: ``cov_unscaled`` is 0 in those
    columns and ``working_weights`` 0 at those rows.
    """
    order = np.argsort(design.group, kind="stable")
    quad = np.empty(fit.working_weights.shape)
    cov = fit.cov_unscaled * (columns[:, :, None] & columns[:, None, :])
    quad[order] = _Products(design).quadratic(design.group[order], cov[order])
    hat = np.where(mask, fit.working_weights, 0.0) * quad
    return np.where(hat > 1.0 - 10.0 * EPS, 1.0, hat)


def hat_values_at(fit: GlmFit, design: SharedDesign, rows: IntArray, obs: IntArray) -> FloatArray:
    """:func:`hat_values_shared` at the (fit, observation) pairs ``(rows[i], obs[i])`` only."""
    x = design.matrices[design.group[rows], obs]  # (k, P)
    quad = np.einsum("kp,kpq,kq->k", x, fit.cov_unscaled[rows], x)
    hat = fit.working_weights[rows, obs] * quad
    return np.where(hat > 1.0 - 10.0 * EPS, 1.0, hat)


def pearson_dispersion(
    fit: GlmFit, y: FloatArray, mask: BoolArray, weights: FloatArray | None = None
) -> FloatArray:
    """R's ``summary.glm`` dispersion: sum(weights * ((y - mu) / mu)^2) / df_residual.

    ``weights`` defaults to the fit's working weights (the textbook Pearson statistic);
    farringtonFlexible's quirk passes the prior weights instead (see farrington.py).
    """
    used = fit.working_weights if weights is None else np.where(mask, weights, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.where(mask, (np.where(mask, y, 0.0) - fit.mu) / fit.mu, 0.0)
        return np.asarray(_rowdot(used, resid * resid) / fit.df_residual, dtype=np.float64)
