"""From records to counts: line lists to weekly (or other) counts, long values to cells."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from epibridge.model.schema import COUNTS, REPORTING
from epibridge.pipeline.checks import Check, any_failed, fold, text
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


#: A reporting cell: no strata (a reporting form is sent or not, for all ages and sexes).
REPORT_CELL = tuple(k for k in CELL if k not in ("age_band", "sex"))
REPORT_MEASURES = ("reports_expected", "reports_received", "reports_on_time")


def _typed(table: ir.Table, schema: pa.Schema = COUNTS) -> ir.Table:
    return table.select(
        **{f.name: table[f.name].cast(ibis.dtype(f.type).copy(nullable=True)) for f in schema}
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


def pivot_measures(values: ir.Table, dataset: str = "counts") -> tuple[ir.Table, ir.Table]:
    """Long accepted values (one measure per row) to cells with cases and deaths.

    Returns the cells whose deaths do not exceed cases, and the quarantine rows for the
    records of the cells that do (``deaths_exceed_cases`` applies to the whole cell).
    For ``dataset`` reporting, the cells are reporting cells (:func:`pivot_reporting`).
    """
    if dataset == "reporting":
        return pivot_reporting(values)
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


def _cell_checks(cells: ir.Table) -> list[Check]:
    """The reporting rules, on whole cells: a long format gives each figure its own row."""
    where = text(" in the cell ", cells["area"], " ", cells["disease"].fill_null("(all)"), " ")
    where = where.concat(cells["period"], "; all records of the cell are held back")
    expected, received = cells["reports_expected"], cells["reports_received"]
    on_time = cells["reports_on_time"]
    checks = [
        Check(
            "missing_required",
            name,
            cells[name].isnull(),
            ibis.literal(""),
            text(f"no {name} value", where, f"; export the data element mapped to {name}"),
        )
        for name in ("reports_expected", "reports_received")
    ]
    return [
        *checks,
        Check(
            "received_exceeds_expected",
            "reports_received",
            received > expected,
            received,
            text("reports_received (", received, ") exceeds reports_expected (", expected)
            .concat(")")
            .concat(where),
        ),
        Check(
            "on_time_exceeds_received",
            "reports_on_time",
            on_time > received,
            on_time,
            text("reports_on_time (", on_time, ") exceeds reports_received (", received)
            .concat(")")
            .concat(where),
        ),
    ]


def pivot_reporting(values: ir.Table) -> tuple[ir.Table, ir.Table]:
    """Long accepted reporting values to cells in the REPORTING schema.

    A cell (area, disease or NULL for all, period) takes each measure from its row
    (repeated measures were quarantined as ``duplicate_cell`` before). A cell without
    expected or received reports, or whose figures contradict each other, is held back
    with all its records, like ``deaths_exceed_cases`` for counts.
    """
    measure = values[MEASURE]
    figures = {
        name: ibis.ifelse(measure == name, values[VALUE], ibis.null()).max().cast("int64")
        for name in REPORT_MEASURES
    }
    cells = values.group_by(list(REPORT_CELL)).aggregate(
        **figures,
        source_file=values["source_file"].min(),
        source_record=values["source_record"].min(),
    )
    checks = _cell_checks(cells)
    cells = cells.mutate(_bad=any_failed(checks))
    good = _typed(cells.filter(~cells["_bad"]), REPORTING)
    bad = cells.filter(cells["_bad"])
    verdict = bad.mutate(**fold(_cell_checks(bad))).select(*REPORT_CELL, *_Q)
    joined = values.inner_join(verdict, [values[k].identical_to(verdict[k]) for k in REPORT_CELL])
    quarantine = joined.select(
        file=joined["source_file"],
        record=joined["source_record"],
        field=joined["_q_field"],
        value=joined["_q_value"],
        rule=joined["_q_rule"],
        message=joined["_q_message"],
        suggestion=ibis.null().cast("string"),
        other_rules=joined["_q_other"],
    )
    return good, quarantine


_Q = ("_q_rule", "_q_field", "_q_value", "_q_message", "_q_other")


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


def total_population(denominators: ir.Table) -> ir.IntegerValue:
    """All people in a denominators table, each area and year once (as :func:`total_cases`:
    a row for all ages and both sexes is the figure; without one, the strata add up)."""
    keys = ["area", "year"]
    overall = denominators["age_band"].isnull() & denominators["sex"].isnull()
    people = denominators["population"]
    per_area = denominators.group_by(keys).aggregate(
        has_total=overall.any(),
        total=ibis.ifelse(overall, people, 0).sum(),
        strata=ibis.ifelse(overall, 0, people).sum(),
    )
    chosen = ibis.ifelse(per_area["has_total"], per_area["total"], per_area["strata"])
    return chosen.sum().fill_null(0).cast("int64")
