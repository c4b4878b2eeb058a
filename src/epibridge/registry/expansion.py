"""Expansion factors: how many true cases each reported case stands for.

National surveillance sees a fraction of the symptomatic cases (people who never reach a
clinic, outpatients not reported, cases never tested). Burden studies measure that
fraction against a cohort and publish an **expansion factor** per country and disease
with an interval. The hub multiplies reported counts by it to draw the corrected map
(``hub/burden.py``), so every factor carries its source, what its interval means and the
population it was measured in.

The package ships a sourced default set (``data/expansion_factors.csv``,
docs/registries/expansion-factors.md); a hub may supply its own file with the same
columns (``expansion_factors.csv`` in the hub's folder), whose rows replace the defaults
for the same country and disease.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from epibridge.algorithms.burden import LEVEL, log_sigma
from epibridge.model.errors import SourceError

FILE_NAME = "expansion_factors.csv"
COLUMNS = ("country", "disease", "factor", "low", "high", "interval", "population", "source")
_VERSION = re.compile(r"version=(\S+)")
_ISO3 = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ExpansionFactor:
    country: str
    disease: str
    factor: float
    low: float
    high: float
    interval: str  # what the interval is (a confidence interval, a range of estimates...)
    population: str  # who it was measured in
    source: str
    note: str = ""
    origin: str = ""  # the file it came from (package default or the hub's own)

    @property
    def sigma(self) -> float:
        """Log-scale standard deviation implied by the interval (taken as 95%)."""
        return log_sigma(self.factor, self.low, self.high, LEVEL)


def _number(text: str, origin: str, line: int, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SourceError(
            origin,
            f"line {line}, field {field}: {text!r} is not a number",
            "write the factor and its bounds as decimal numbers (e.g. 7.6)",
        ) from None
    if not math.isfinite(value) or value < 1:
        raise SourceError(
            origin,
            f"line {line}, field {field}: {text!r} must be a number of at least 1",
            "an expansion factor counts true cases per reported case, so it is never below 1",
        )
    return value


def parse(text: str, origin: str) -> tuple[str, list[ExpansionFactor]]:
    """(version, factors) of an expansion-factor file; errors name the line and field."""
    lines = text.splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    version = next((m.group(1) for c in comments if (m := _VERSION.search(c))), "")
    body = [ln for ln in lines if not ln.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(
            origin,
            f"the header lacks the column(s) {', '.join(missing)}",
            f"start the file with the header {','.join(COLUMNS)},note",
        )
    factors: list[ExpansionFactor] = []
    seen: set[tuple[str, str]] = set()
    first_line = len(lines) - len(body) + 2  # the header is the first non-comment line
    for offset, row in enumerate(reader):
        line = first_line + offset
        country = (row["country"] or "").strip().upper()
        disease = (row["disease"] or "").strip().upper()
        if not _ISO3.fullmatch(country):
            raise SourceError(
                origin,
                f"line {line}, field country: {row['country']!r} is not an ISO 3166-1 alpha-3 code",
                "write the country as three letters, e.g. KHM",
            )
        if not disease:
            raise SourceError(
                origin,
                f"line {line}, field disease: empty",
                "write the regional disease code, e.g. DENGUE",
            )
        if not (row["source"] or "").strip():
            raise SourceError(
                origin,
                f"line {line}, field source: empty",
                "every factor needs its source (the study or report it comes from)",
            )
        factor = _number(row["factor"] or "", origin, line, "factor")
        low = _number(row["low"] or "", origin, line, "low")
        high = _number(row["high"] or "", origin, line, "high")
        if not low <= factor <= high:
            raise SourceError(
                origin,
                f"line {line}: the interval {low}-{high} does not contain the factor {factor}",
                "give low <= factor <= high",
            )
        if (country, disease) in seen:
            raise SourceError(
                origin,
                f"line {line}: a second factor for {country} {disease}",
                "keep one row per country and disease",
            )
        seen.add((country, disease))
        factors.append(
            ExpansionFactor(
                country,
                disease,
                factor,
                low,
                high,
                (row["interval"] or "").strip(),
                (row["population"] or "").strip(),
                row["source"].strip(),
                (row.get("note") or "").strip(),
                origin,
            )
        )
    return version, factors


@cache
def _defaults() -> tuple[str, tuple[ExpansionFactor, ...]]:
    text = resources.files(__package__).joinpath(f"data/{FILE_NAME}").read_text("utf-8")
    version, factors = parse(text, f"epibridge registry data/{FILE_NAME}")
    return version, tuple(factors)


def registry_version() -> str:
    return _defaults()[0]


def expansion_factors(hub_home: Path | None = None) -> dict[tuple[str, str], ExpansionFactor]:
    """Factors by (country, disease): the shipped defaults, overridden by the hub's own
    ``expansion_factors.csv`` when its folder holds one."""
    factors = {(f.country, f.disease): f for f in _defaults()[1]}
    if hub_home is not None:
        path = hub_home / FILE_NAME
        if path.is_file():
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise SourceError(
                    path, f"cannot be read ({error})", "save it as UTF-8 CSV"
                ) from None
            for f in parse(text, str(path))[1]:
                factors[(f.country, f.disease)] = f
    return factors
