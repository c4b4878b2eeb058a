"""The input every detector takes: counts as a (series x time) float matrix, NaN missing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray


def count_matrix(
    observed: ArrayLike,
    prefix: str,
    error: Callable[[str, str], Exception],
    *,
    copy: bool = True,
) -> NDArray[np.float64]:
    """``observed`` as a new float matrix, or ``error(reason, message)`` with the reasons
    ``<prefix>_not_numeric`` and ``<prefix>_not_a_matrix``. Each detector then checks the
    values it cannot take (infinite, negative, fractional counts) itself.

    ``copy=False`` lets a detector that only reads the counts use a float64 ``observed``
    as it is (a copy is still made when it must be converted)."""
    try:
        # by default a copy: never alias the caller's data
        counts = np.array(observed, dtype=np.float64, copy=True if copy else None)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{prefix}_not_numeric", f"observed counts must be numbers (NaN for missing): {exc}"
        ) from exc
    if counts.ndim != 2:
        raise error(
            f"{prefix}_not_a_matrix",
            f"observed must be a 2-D (series x time) array, got {counts.ndim} dimension(s); "
            "wrap a single series as observed[np.newaxis, :]",
        )
    return counts
