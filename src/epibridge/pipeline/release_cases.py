"""Line-list releases: minimize, generalize, k-anonymize, pseudonymize.

Order matters: fields the agreement does not allow are dropped first; the fields that
are not quasi-identifiers are generalized to the agreement's resolution; the
quasi-identifiers (always including the reporting period, which is usually derived
from the onset date) go through the k-anonymity search, which generalizes further where
needed and withholds only the records still in classes smaller than k; case ids become
keyed pseudonyms last, for the records that are released.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa

from epibridge.backend import to_arrow
from epibridge.model.agreement import CASE_FIELDS, Agreement, Withheld
from epibridge.pipeline import policy
from epibridge.pipeline.generalize import (
    Hierarchy,
    age_band_expr,
    age_hierarchy,
    area_expr,
    area_hierarchy,
    date_hierarchy,
    date_label_expr,
    sex_hierarchy,
)
from epibridge.pipeline.kanon import k_anonymize
from epibridge.pipeline.pseudonym import derive_key, key_scope, pseudonymize
from epibridge.pipeline.release_counts import generalized, release_period_start
from epibridge.registry.calendars import period_containing

_DATES = ("date_onset", "date_diagnosis", "date_report")
_ADMIN = ("admin1", "admin2", "admin3")
#: Always released: what, where, when (the period label) and how many.
_STRUCTURE = ("country", "area", "disease", "period", "case_count")


def _hierarchies(agreement: Agreement) -> list[Hierarchy]:
    found: list[Hierarchy] = []
    for q in agreement.quasi_identifiers:
        if q == "age_band":
            found.append(age_hierarchy(agreement.age_bands))
        elif q == "sex":
            found.append(sex_hierarchy())
        elif q == "area":
            found.append(area_hierarchy(agreement.area_level))
        else:
            found.append(date_hierarchy(q, agreement.time_resolution, agreement.calendar))
    found.append(date_hierarchy("period", agreement.time_resolution, agreement.calendar))
    return found


def _prepared(t: ir.Table, agreement: Agreement, allowed: set[str]) -> ir.Table:
    """Allowed fields, non-quasi-identifiers generalized, quasi-identifiers' sources kept."""
    quasi = set(agreement.quasi_identifiers)
    cols: dict[str, ir.Value] = {
        "country": t["country"],
        "disease": t["disease"],
        "case_count": t["case_count"],
        # The hierarchy turns this date into the period label at the chosen level.
        "period": release_period_start(t, agreement),
    }
    if "area" in quasi:
        for name in (*_ADMIN, "area_level"):
            cols[name] = t[name]
    else:
        cols["area"] = area_expr(t, agreement.area_level)
        for i, name in enumerate(_ADMIN, start=1):
            if name in allowed and i <= agreement.area_level:
                cols[name] = t[name]
    if "age_band" in quasi:
        cols["age_years"] = t["age_years"]
        cols["age_band"] = t["age_band"]
    elif "age_band" in allowed:
        cols["age_band"] = age_band_expr(t, agreement.age_bands)
    for d in _DATES:
        if d in quasi:
            cols[d] = t[d]
        elif d in allowed:
            cols[d] = date_label_expr(t[d], agreement.time_resolution, agreement.calendar)
    for name in CASE_FIELDS:
        if name in allowed and name not in cols and name not in (*_ADMIN, "age_years"):
            cols[name] = t[name]
    if "age_years" in allowed and "age_band" not in quasi:
        cols["age_years"] = t["age_years"]
    return t.select(**cols)


def protect_cases(
    t: ir.Table,
    agreement: Agreement,
    fields: Sequence[str] | None,
    master_key: bytes | None,
    cutoff: date,
    today: date,
) -> tuple[pa.Table, dict[str, Any], list[Withheld]]:
    """The released line list, the receipt's section for it, and what was withheld."""
    allowed = set(fields) if fields is not None else set(agreement.case_fields)
    last = t.select(p=release_period_start(t, agreement)).p.max().to_pyarrow().as_py()
    if last is not None:
        end = period_containing(last, agreement.time_resolution, agreement.calendar).end
        policy.check_embargo(agreement, end, cutoff, today)
    changed = generalized(t, agreement).to_pyarrow().to_pylist()[0]
    prepared = _prepared(t, agreement, allowed)
    result = k_anonymize(prepared, _hierarchies(agreement), agreement.k, agreement.max_withheld)
    table = to_arrow(result.table)
    section: dict[str, Any] = {
        "fields_dropped": sorted(f for f in CASE_FIELDS if f in t.columns and f not in allowed),
        "generalized": {
            "area": f"admin level {agreement.area_level}",
            "dates": agreement.time_resolution,
            **({"age": f"bands {list(agreement.age_bands)}"} if "age_band" in allowed else {}),
        },
        "records_generalized": {
            k: v for k, v in changed.items() if k != "age" or "age_band" in allowed
        },
        "k_anonymity": {
            "k": agreement.k,
            "quasi_identifiers": [*agreement.quasi_identifiers, "period"],
            "levels": result.levels,
            "records_withheld": result.withheld,
            "classes": result.classes,
            "smallest_class": result.smallest_class,
        },
    }
    if "case_id" in allowed and master_key is not None and "case_id" in table.column_names:
        idx = table.schema.get_field_index("case_id")
        pseudonyms = pseudonymize(table.column("case_id"), derive_key(master_key, agreement))
        table = table.set_column(idx, "case_id", pseudonyms)
        section["pseudonyms"] = {
            "field": "case_id",
            "method": "HMAC-SHA256, key derived with HKDF-SHA256 from the node's secret",
            "key_scope": "record linkage" if agreement.record_linkage else "this agreement",
            "scope_label": key_scope(agreement),
            "records": table.num_rows,
        }
    section["rows"] = table.num_rows
    withheld = []
    if result.withheld:
        withheld.append(
            Withheld(
                "records", f"in a group of fewer than {agreement.k} (k-anonymity)", result.withheld
            )
        )
    return table, section, withheld
