"""Reporting releases: reports expected, received and on time, at the agreement's grain.

Completeness (DHIS2's reporting rate: received over expected) is what lets the hub tell
"no cases" from "no reports". The national system knows how many reports each area owed;
the release sums them to the agreement's area level and time resolution (a week goes to
the month holding its Thursday, as counts do), so a partner sees completeness at the
same grain as the counts it qualifies.

These are counts of reports from reporting units (health facilities, districts), not of
people, so no small-cell suppression or noise applies (``docs/sharing-agreements.md``).
A cell's on-time reports are known only when every report it sums said whether it was
on time; otherwise the release leaves them null rather than undercount.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from epibridge.model.agreement import Agreement
from epibridge.model.schema import RELEASE_REPORTING
from epibridge.pipeline.generalize import area_expr
from epibridge.pipeline.release_counts import period_columns, release_period_start


def covered(t: ir.Table, agreement: Agreement) -> ir.BooleanValue:
    """Rows of the agreement's diseases, and reports covering all diseases (null)."""
    return t["disease"].isnull() | t["disease"].isin(list(agreement.diseases))


def reporting_cells(t: ir.Table, agreement: Agreement) -> ir.Table:
    """Reports per generalized area, release period and disease, summed by the engine."""
    keys = {
        "area": area_expr(t, agreement.area_level),
        "area_level": ibis.least(t["area_level"], agreement.area_level).cast("int8"),
        "period_start": release_period_start(t, agreement),
        "disease": t["disease"],
    }
    on_time = t["reports_on_time"]
    return t.group_by(**keys).aggregate(
        reports_expected=t["reports_expected"].sum().cast("int64"),
        reports_received=t["reports_received"].sum().cast("int64"),
        reports_on_time=ibis.ifelse(on_time.count() == t.count(), on_time.sum(), ibis.null()).cast(
            "int64"
        ),
    )


def reporting_release(cells: pa.Table, agreement: Agreement) -> pa.Table:
    """The released table (``RELEASE_REPORTING``), sorted by area, disease and period."""
    n = cells.num_rows
    if n == 0:
        return RELEASE_REPORTING.empty_table()
    periods = period_columns(cells.column("period_start").combine_chunks(), agreement)
    columns = {
        "country": pa.array([agreement.sender] * n, pa.string()),
        "area": cells.column("area"),
        "area_level": cells.column("area_level"),
        "disease": cells.column("disease"),
        "period": periods["period"],
        "period_type": periods["period_type"],
        "calendar": periods["calendar"],
        "period_start": cells.column("period_start"),
        "period_end": periods["period_end"],
        "reports_expected": cells.column("reports_expected"),
        "reports_received": cells.column("reports_received"),
        "reports_on_time": cells.column("reports_on_time"),
    }
    table = pa.table(
        {f.name: columns[f.name].cast(f.type) for f in RELEASE_REPORTING}, schema=RELEASE_REPORTING
    )
    return table.sort_by(
        [("area", "ascending"), ("disease", "ascending"), ("period_start", "ascending")]
    )
