"""Population denominators in the model's schema, from the geography registry.

The registry ships population figures only where a real, named source exists
(``registry/data/geography/SOURCES.md``); this turns them into the ``denominators``
table of the data model, placed in the same units as the counts they divide.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from epibridge.model.schema import DENOMINATORS
from epibridge.registry import geography


def registry_denominators(countries: Iterable[str] | None = None) -> pa.Table:
    """Every population figure of the registry (for ``countries``, or all of them)."""
    wanted = None if countries is None else set(countries)
    rows: list[dict[str, object]] = []
    for figure in geography.population():
        if wanted is not None and figure.country not in wanted:
            continue
        chain = geography.admin_chain(figure.code)
        rows.append(
            {
                "country": figure.country,
                "admin1": chain.get(1),
                "admin2": chain.get(2),
                "admin3": chain.get(3),
                "area": figure.code,
                "area_level": max(chain),
                "year": figure.year,
                "age_band": None,
                "sex": None,
                "population": figure.population,
                "source": figure.source,
            }
        )
    return pa.Table.from_pylist(rows, schema=DENOMINATORS)
