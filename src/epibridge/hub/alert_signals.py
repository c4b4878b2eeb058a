"""Detection signals, in one shape whatever detector raised them, and when two belong together.

Two detectors feed alerts: the space-time scan (``signals.regional_scan``: clusters of
areas over a few weeks, with a Monte Carlo p-value) and temporal detection
(``temporal.regional_detect``: one row per country, area and monitored week, ``alarm``
true when the count passed its upper bound). Each cluster with ``p <= threshold`` and each
alarm row becomes a ``Signal``: the disease, the areas and their countries, the first and
last week (Monday of the ISO week), and the figures behind it.

A signal's ``key`` is the SHA-256 of what identifies it (detector, method, disease, areas,
weeks), so the same signal raised twice is recognised and not merged twice.

``touches`` is the merge rule of ``alerts.raise_alerts``: the same disease, at least one
area shared or bordering one of the alert's (``registry.geography.adjacency``, borders
between countries included), and weeks that overlap or follow within ``gap`` (one week:
an alarm in week 11 joins an alert ending in week 10).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import pyarrow as pa

from epibridge.hub.log import canonical
from epibridge.hub.signals import RegionalScan
from epibridge.registry.geography import adjacency

SignalKind = Literal["temporal", "cluster"]
#: Clusters at or below this p-value become signals (``cluster_signals``).
CLUSTER_THRESHOLD = 0.05
#: A cross-border cluster at or below this p-value is an early warning: sent at once.
EARLY_WARNING_P = 0.01
#: Weeks that follow within this gap of an alert's weeks still join it.
MERGE_GAP = timedelta(weeks=1)
SCAN_METHOD = "space-time permutation scan"


def _number(value: Any) -> float | None:
    """A finite float, or None (NaN and missing values are not JSON)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Signal:
    """One detector finding: ``areas`` and ``countries`` sorted, weeks by their Monday."""

    kind: SignalKind
    disease: str
    method: str
    areas: tuple[str, ...]
    countries: tuple[str, ...]
    first_week: date
    last_week: date
    p_value: float | None = None
    observed: float | None = None
    expected: float | None = None
    #: Other figures worth keeping (upper bound, relative risk, recurrence interval...).
    figures: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.areas:
            raise ValueError("a signal names at least one area")
        if self.first_week > self.last_week:
            raise ValueError(
                f"a signal's weeks run backwards: {self.first_week} > {self.last_week}"
            )

    @property
    def key(self) -> str:
        """What identifies the signal, hashed: the same finding twice has the same key."""
        ident = {
            "kind": self.kind,
            "method": self.method,
            "disease": self.disease,
            "areas": list(self.areas),
            "first_week": self.first_week.isoformat(),
            "last_week": self.last_week.isoformat(),
        }
        return hashlib.sha256(canonical(ident)).hexdigest()[:32]

    @property
    def cross_border(self) -> bool:
        return len(self.countries) > 1

    @property
    def early_warning(self) -> bool:
        """A cross-border cluster strong enough to be sent before anyone verified it."""
        return (
            self.kind == "cluster"
            and self.cross_border
            and self.p_value is not None
            and self.p_value <= EARLY_WARNING_P
        )

    def summary(self) -> dict[str, Any]:
        """The signal as kept in its alert's detail (JSON)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "method": self.method,
            "areas": list(self.areas),
            "countries": list(self.countries),
            "first_week": self.first_week.isoformat(),
            "last_week": self.last_week.isoformat(),
            "p_value": self.p_value,
            "observed": self.observed,
            "expected": self.expected,
            **{k: _number(v) if isinstance(v, float) else v for k, v in self.figures.items()},
        }


def cluster_signals(
    scan: RegionalScan, disease: str, threshold: float = CLUSTER_THRESHOLD
) -> list[Signal]:
    """The scan's clusters with ``p <= threshold``, most likely first."""
    if not 0 < threshold <= 1:
        raise ValueError(f"the p-value threshold must be in (0, 1], got {threshold}")
    found = []
    for c in scan.result.clusters:
        if c.p_value > threshold:
            continue
        found.append(
            Signal(
                kind="cluster",
                disease=disease,
                method=SCAN_METHOD,
                areas=tuple(sorted(c.areas)),
                countries=tuple(sorted(set(c.countries))),
                first_week=scan.weeks[c.start],
                last_week=scan.weeks[c.end],
                p_value=_number(c.p_value),
                observed=_number(c.observed),
                expected=_number(c.expected),
                figures={
                    "relative_risk": _number(c.relative_risk),
                    "llr": _number(c.llr),
                    "recurrence_interval_weeks": _number(c.recurrence_interval),
                    "center": c.center,
                    "radius_km": _number(c.radius_km),
                    "replicates": scan.result.replicates,
                },
            )
        )
    return found


def temporal_signals(points: pa.Table, method: str) -> list[Signal]:
    """One signal per row of a ``temporal.DETECTION`` table whose ``alarm`` is set.

    Needs the columns ``country``, ``area``, ``disease``, ``week_start``, ``observed``,
    ``expected``, ``upperbound``, ``alarm`` and ``pvalue``; a missing ``alarm`` (no bound
    that week) is no alarm.
    """
    needed = {"country", "area", "disease", "week_start", "observed", "expected", "alarm"}
    missing = sorted(needed - set(points.column_names))
    if missing:
        raise ValueError(f"the detection table lacks the columns {', '.join(missing)}")
    found = []
    for row in points.to_pylist():
        if not row["alarm"]:
            continue
        week = row["week_start"]
        found.append(
            Signal(
                kind="temporal",
                disease=str(row["disease"]),
                method=method,
                areas=(str(row["area"]),),
                countries=(str(row["country"]),),
                first_week=week,
                last_week=week,
                p_value=_number(row.get("pvalue")),
                observed=_number(row["observed"]),
                expected=_number(row["expected"]),
                figures={"upperbound": _number(row.get("upperbound"))},
            )
        )
    return found


@functools.cache
def _neighbours() -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for pair in adjacency():
        found[pair.code_a].add(pair.code_b)
        found[pair.code_b].add(pair.code_a)
    return {code: frozenset(near) for code, near in found.items()}


def near(areas: Iterable[str], others: Iterable[str]) -> bool:
    """Whether any area of ``areas`` is one of ``others`` or borders one of them."""
    wanted = set(others)
    neighbours = _neighbours()
    return any(a in wanted or neighbours.get(a, frozenset()) & wanted for a in areas)


def touches(
    signal: Signal,
    disease: str,
    areas: Iterable[str],
    first_week: date,
    last_week: date,
    gap: timedelta = MERGE_GAP,
) -> bool:
    """The merge rule: same disease, areas shared or bordering, weeks within ``gap``."""
    return (
        signal.disease == disease
        and signal.first_week <= last_week + gap
        and signal.last_week >= first_week - gap
        and near(signal.areas, areas)
    )
