"""The detectors as functions of a block of series: what one engine partition runs.

Each detector in ``algorithms/`` takes a (series x time) matrix and treats every series
on its own, so a block of rows gives the same rows of the result as the whole matrix.
``kernel`` binds a method and its options into such a function (a ``functools.partial``
of a module-level function, so that it pickles: Spark ships it to its executors), and
``engines.by_series`` runs it over the whole matrix in this process or over partitions
of series on Spark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

FloatArray = np.ndarray


@dataclass(frozen=True)
class Outputs:
    """One value per series and time point (``defined``: the detector gave one there)."""

    expected: np.ndarray
    upperbound: np.ndarray
    alarm: np.ndarray
    defined: np.ndarray
    pvalue: np.ndarray | None = None

    @staticmethod
    def stacked(parts: list[Outputs]) -> Outputs:
        """The outputs of consecutive blocks of series, as one."""
        pvalues = [p.pvalue for p in parts]
        return Outputs(
            np.vstack([p.expected for p in parts]),
            np.vstack([p.upperbound for p in parts]),
            np.vstack([p.alarm for p in parts]),
            np.vstack([p.defined for p in parts]),
            None if any(v is None for v in pvalues) else np.vstack(pvalues),  # type: ignore[arg-type]
        )


Kernel = Callable[[np.ndarray, np.ndarray | None], Outputs]


def _ears(
    observed: np.ndarray,
    population: np.ndarray | None,
    *,
    kind: Literal["C1", "C2", "C3"],
    options: dict[str, Any],
) -> Outputs:
    from epibridge.algorithms.ears import ears

    r = ears(observed, kind, **options)
    return Outputs(r.expected, r.upperbound, r.alarm, r.defined)


def _cusum(observed: np.ndarray, population: np.ndarray | None, **options: Any) -> Outputs:
    from epibridge.algorithms.cusum import cusum

    r = cusum(observed, **options)
    return Outputs(r.expected, r.upperbound, r.alarm, r.defined)


def _glrnb(observed: np.ndarray, population: np.ndarray | None, **options: Any) -> Outputs:
    from epibridge.algorithms.glrnb import glrnb

    r = glrnb(observed, **options)
    return Outputs(r.expected, r.upperbound, r.alarm, r.defined)


def _farrington(
    observed: np.ndarray,
    population: np.ndarray | None,
    *,
    control: Any,
    dates: np.ndarray | None,
    start: int,
) -> Outputs:
    from epibridge.algorithms.farrington import farrington_flexible

    r = farrington_flexible(observed, control, dates=dates, population=population, start=start)
    return Outputs(r.expected, r.upperbound, r.alarm, r.defined, r.pvalue)


def ears_kernel(kind: Literal["C1", "C2", "C3"], **options: Any) -> Kernel:
    """EARS C1/C2/C3 with ``algorithms.ears.ears``'s keyword options."""
    return partial(_ears, kind=kind, options=options)


def cusum_kernel(**options: Any) -> Kernel:
    """CUSUM with ``algorithms.cusum.cusum``'s options (``start`` first among them)."""
    return partial(_cusum, **options)


def glrnb_kernel(**options: Any) -> Kernel:
    """GLR negative binomial with ``algorithms.glrnb.glrnb``'s options."""
    return partial(_glrnb, **options)


def farrington_kernel(control: Any, dates: np.ndarray | None, start: int) -> Kernel:
    """Farrington (flexible) or Noufaily with a ``FarringtonControl``."""
    return partial(_farrington, control=control, dates=dates, start=start)
