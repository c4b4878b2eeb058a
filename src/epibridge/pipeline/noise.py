"""Differential-privacy noise on counts: OpenDP's discrete Laplace, and a bound on its sums.

Counts leave a node under differential privacy with integer noise drawn by OpenDP
(``make_laplace`` over integers samples the discrete Laplace, also called the two-sided
geometric, exactly: no floating-point sampling, so none of the floating-point attacks on
textbook Laplace noise apply). The noise is the one thing in ``pipeline/`` drawn from a
random source that is not passed in: it must come from OpenDP's cryptographic generator,
which cannot be seeded, so tests of this module are statistical.

Speed. OpenDP draws about 10^5 values per second per core (each draw is several exact
Bernoulli trials on rationals, each fed by the OpenSSL DRBG); the numpy-to-Rust copy is
zero-copy and the result conversion is a few percent. The sampler releases the GIL (ctypes
foreign call), so large vectors are cut into chunks drawn on a thread per CPU. Chunking
changes nothing in the mechanism: every cell gets independent noise of the same scale
either way.

References: Ghosh, Roughgarden, Sundararajan (2012), universally utility-maximizing
privacy mechanisms (the geometric mechanism); Canonne, Kamath, Steinke (2020), the
discrete Gaussian for differential privacy, section 5.2 (the exact sampler OpenDP uses).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import opendp.prelude as dp
from scipy.optimize import minimize_scalar

from epibridge.model.errors import EpibridgeError

dp.enable_features("contrib")

MECHANISM = "discrete Laplace (OpenDP make_laplace on integers)"

# Vectors longer than this are drawn in chunks of this size on several threads.
CHUNK = 1 << 16

# Above this scale the noise would overflow 64-bit counts (OpenDP saturates at the int64
# limits, which would bias the release silently); no useful release needs noise this large.
MAX_SCALE = 1e15


class NoiseError(EpibridgeError):
    """The privacy parameters or the counts cannot be noised as asked."""


@dataclass(frozen=True)
class Noised:
    """Noisy counts and how they were made (for the release's receipt)."""

    values: np.ndarray  # int64 noisy counts, same shape as the input; may be negative
    epsilon: float  # the privacy loss asked for; OpenDP's privacy map is at most this
    scale: float  # of the discrete Laplace: P(noise = x) is proportional to exp(-|x| / scale)
    mechanism: str


def _measurement(scale: float) -> Any:
    """OpenDP's discrete Laplace on int64 vectors, with L1 distance between neighbours."""
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=scale
    )


def _draw(scale: float, chunk: np.ndarray) -> np.ndarray:
    # One measurement per call: each thread invokes its own OpenDP object.
    out = _measurement(scale)(chunk)
    return np.asarray(out, dtype=np.int64)


def _workers() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _check_epsilon(epsilon: float, sensitivity: int) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise NoiseError(f"epsilon must be a number, got {epsilon!r}")
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise NoiseError(
            f"epsilon must be a positive finite number, got {epsilon!r}\n"
            "  what to do: set privacy.epsilon in the agreement to a value above 0 "
            "(smaller means more noise)"
        )
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int | np.integer):
        raise NoiseError(f"sensitivity must be a whole number, got {sensitivity!r}")
    if sensitivity < 1:
        raise NoiseError(
            f"sensitivity must be at least 1 (cells one case can change), got {sensitivity}"
        )


def _checked_counts(counts: np.ndarray) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.dtype.kind not in "iu":
        raise NoiseError(
            f"counts must be whole numbers (an integer array), got dtype {arr.dtype}\n"
            "  what to do: fill or drop missing counts before noising, then cast to int64"
        )
    if arr.size and arr.min() < 0:
        raise NoiseError(
            f"counts must not be negative; found {int(arr.min())}\n"
            "  what to do: noise the raw counts, not counts that were already noised or differenced"
        )
    if arr.size and arr.max() > np.iinfo(np.int64).max // 2:
        raise NoiseError(f"a count is too large to noise in 64 bits: {int(arr.max())}")
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)


def _calibrated_scale(epsilon: float, sensitivity: int) -> float:
    """The smallest float scale from ``sensitivity / epsilon`` up that OpenDP proves private.

    ``sensitivity / epsilon`` is rounded to a float, and OpenDP's map rounds outwards, so
    about half the time the map of the plain quotient is one ulp above epsilon; stepping
    the scale up by one ulp (seen to be always enough) makes the proof hold.
    """
    scale = sensitivity / epsilon
    for _ in range(8):
        if scale > MAX_SCALE:
            raise NoiseError(
                f"epsilon {epsilon} with sensitivity {sensitivity} needs noise of scale "
                f"{scale:.3g}, beyond what 64-bit counts can carry\n"
                "  what to do: use a larger epsilon in the agreement"
            )
        if float(_measurement(scale).map(sensitivity)) <= epsilon:
            return scale
        scale = math.nextafter(scale, math.inf)
    raise AssertionError(f"OpenDP's privacy map stays above epsilon={epsilon} near {scale}")


def noisy_counts(counts: np.ndarray, epsilon: float, sensitivity: int = 1) -> Noised:
    """Add discrete-Laplace noise of scale ``sensitivity / epsilon`` to every count.

    ``sensitivity`` is the L1 sensitivity of the whole vector released: how many cells
    (summed over every measure) one case can change by one. The release is then
    ``epsilon``-differentially private, checked against OpenDP's own privacy map.
    Noisy counts are returned as drawn, negative ones included: clamping, rounding or
    dropping them is post-processing, and it is the caller's choice (clamping at zero
    biases sums upwards).
    """
    _check_epsilon(epsilon, sensitivity)
    arr = np.asarray(counts)
    flat = _checked_counts(arr)
    scale = _calibrated_scale(float(epsilon), int(sensitivity))
    # Cheap, and the guarantee rests on it: OpenDP's proof, not our arithmetic.
    assert float(_measurement(scale).map(int(sensitivity))) <= epsilon
    if flat.size == 0:
        values = np.zeros(0, dtype=np.int64)
    elif flat.size <= CHUNK:
        values = _draw(scale, flat)
    else:
        chunks = [flat[i : i + CHUNK] for i in range(0, flat.size, CHUNK)]
        with ThreadPoolExecutor(max_workers=min(_workers(), len(chunks))) as pool:
            values = np.concatenate(list(pool.map(lambda c: _draw(scale, c), chunks)))
    return Noised(values.reshape(arr.shape), float(epsilon), scale, MECHANISM)


def _log_mgf(t: np.ndarray, scale: float) -> np.ndarray:
    """log E[exp(tX)] for the discrete Laplace of ``scale``, valid for 0 < t < 1/scale.

    With p = exp(-1/scale), P(X = x) = (1 - p)/(1 + p) p^|x| and
    E[exp(tX)] = (1 - p)^2 / ((1 - p e^t)(1 - p e^-t)); written with expm1 so that large
    scales (p close to 1) keep their precision.
    """
    a = 1.0 / scale
    log_m: np.ndarray = (
        2.0 * np.log(-np.expm1(-a)) - np.log(-np.expm1(t - a)) - np.log(-np.expm1(-t - a))
    )
    return log_m


def noise_bound(scale: float, n: int, failure: float = 1e-9) -> float:
    """A bound B with P(|X_1 + ... + X_n| > B) <= ``failure`` for n independent noises.

    Derivation (Chernoff). Each X_i is discrete Laplace of ``scale``, with moment
    generating function M(t) given in ``_log_mgf`` for 0 < t < 1/scale. For the sum S,
    Markov's inequality on exp(tS) gives P(S >= B) <= exp(-tB) M(t)^n, and S is symmetric,
    so P(|S| >= B) <= 2 exp(-tB) M(t)^n. Setting the right side to ``failure`` and solving,
    B(t) = (n log M(t) + log(2 / failure)) / t is a valid bound for every t in (0, 1/scale);
    we return the smallest B(t) found (a grid, then Brent's method near its best point).
    Any t gives a true bound, so an imprecise minimum only makes the bound looser, never
    wrong. It grows like sqrt(n) (about sqrt(2 n var log(2/failure)) for large n), unlike a
    union bound over cells, which grows like n.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise NoiseError(f"scale must be a positive finite number, got {scale!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise NoiseError(f"n must be a whole number of noises (0 or more), got {n!r}")
    if not 0.0 < failure < 1.0:
        raise NoiseError(f"failure must be a probability between 0 and 1, got {failure!r}")
    if n == 0:
        return 0.0
    log_tail = math.log(2.0 / failure)
    a = 1.0 / scale

    def bound(u: np.ndarray) -> np.ndarray:
        t = u * a
        return (int(n) * _log_mgf(t, scale) + log_tail) / t

    grid = np.linspace(0.0, 1.0, 2002)[1:-1]
    values = bound(grid)
    i = int(np.argmin(values))
    best = float(values[i])
    lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)])
    found = minimize_scalar(
        lambda u: float(bound(np.array([u]))[0]),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    if found.success and math.isfinite(float(found.fun)):
        best = min(best, float(found.fun))
    return best
