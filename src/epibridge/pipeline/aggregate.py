"""From records to counts: line lists to weekly (or other) counts, long values to cells."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from epibridge.model.schema import COUNTS
from epibridge.pipeline.checks import text
from epibridge.pipeline.fields import MEASURE, VALUE

CELL = (
    "country",
    "admin1",
    "admin2",
    "admin3",
    "area",
    "area_level",
    "disease",
    "period",
    "period_type",
    "calendar",
    "period_start",
    "period_end",
    "age_band",
    "sex",
)


def _typed(table: ir.Table) -> ir.Table:
    return table.select(
        **{f.name: table[f.name].cast(ibis.dtype(f.type).copy(nullable=True)) for f in COUNTS}
    )


def cases_to_counts(cases: ir.Table, by_age: bool = False, by_sex: bool = False) -> ir.Table:
    """Aggregate a harmonized line list to counts per area, disease and period.

    ``deaths`` counts records whose outcome is ``dead`` (NULL when no record of the cell
    has an outcome). Lineage of a cell: the file and the first record that contributes.
    """
    keys = [k for k in CELL if k not in ("age_band", "sex")]
    if by_age:
        keys.append("age_band")
    if by_sex:
        keys.append("sex")
    dead = ibis.ifelse(
        cases["outcome"] == "dead",
        cases["case_count"],
        ibis.ifelse(cases["outcome"].isnull(), ibis.null(), 0),
    )
    grouped = cases.group_by(keys).aggregate(
        cases=cases["case_count"].sum().cast("int64"),
        deaths=dead.sum().cast("int64"),
        source_file=cases["source_file"].min(),
        source_record=cases["source_record"].min(),
    )
    if not by_age:
        grouped = grouped.mutate(age_band=ibis.null().cast("string"))
    if not by_sex:
        grouped = grouped.mutate(sex=ibis.null().cast("string"))
    return _typed(grouped)


def pivot_measures(values: ir.Table) -> tuple[ir.Table, ir.Table]:
    """Long accepted values (one measure per row) to cells with cases and deaths.

    Returns the cells whose deaths do not exceed cases, and the quarantine rows for the
    records of the cells that do (``deaths_exceed_cases`` applies to the whole cell).
    """
    is_cases = values[MEASURE] == "cases"
    cells = values.group_by(list(CELL)).aggregate(
        cases=ibis.ifelse(is_cases, values[VALUE], 0).sum().cast("int64"),
        deaths=ibis.ifelse(is_cases, ibis.null(), values[VALUE]).sum().cast("int64"),
        source_file=values["source_file"].min(),
        source_record=values["source_record"].min(),
    )
    bad = cells["deaths"].notnull() & (cells["deaths"] > cells["cases"])
    good = _typed(cells.filter(~bad))
    bad_cells = cells.filter(bad).select(*CELL, "cases", "deaths")
    joined = values.inner_join(bad_cells, [values[k].identical_to(bad_cells[k]) for k in CELL])
    quarantine = joined.select(
        file=joined["source_file"],
        record=joined["source_record"],
        field=ibis.literal("deaths"),
        value=joined["deaths"].cast("string"),
        rule=ibis.literal("deaths_exceed_cases"),
        message=text(
            "deaths (",
            joined["deaths"],
            ") exceed cases (",
            joined["cases"],
            ") in the cell ",
            joined["area"],
            " ",
            joined["disease"],
            " ",
            joined["period"],
            "; all records of the cell are held back",
        ),
        suggestion=ibis.null().cast("string"),
        other_rules=ibis.null().cast("string"),
    )
    return good, quarantine


def total_cases(counts: ir.Table) -> ir.IntegerValue:
    """All cases in a counts table, counting each place-disease-period once.

    A source may send a total cell (age band and sex NULL: "all") beside its strata
    (FHIR MeasureReport groups do); then the total is the cell's number and the strata
    are breakdowns of it, not more cases. Without a total, the strata add up.
    """
    keys = [k for k in CELL if k not in ("age_band", "sex")]
    overall = counts["age_band"].isnull() & counts["sex"].isnull()
    per_cell = counts.group_by(keys).aggregate(
        has_total=overall.any(),
        total=ibis.ifelse(overall, counts["cases"], 0).sum(),
        strata=ibis.ifelse(overall, 0, counts["cases"]).sum(),
    )
    chosen = ibis.ifelse(per_cell["has_total"], per_cell["total"], per_cell["strata"])
    return chosen.sum().fill_null(0).cast("int64")
