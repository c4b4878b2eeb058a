"""FHIR R4 MeasureReports as IHE mADX uses them (see :mod:`epibridge.adapters.fhir`).

:func:`read_measure_reports` — a MeasureReport, or a Bundle holding MeasureReports
-----------------------------------------------------------------------------------------
One row per population count, flattened in document order: for each report, for each
``group``: first the *group total* rows (one per ``group.population``), then for each
``stratifier``, for each ``stratum``: one row per ``stratum.population``. A group or
stratum with no population still gives one row (``population_code`` and ``count`` null)
so that its ``measureScore`` is kept.

Columns: ``report_id`` (id, else first identifier as ``system|value``), ``subject`` (reference; an
identifier as ``system|value``; a ``#contained`` Location reference is replaced by that
Location's identifier when it has one), ``period_start``, ``period_end``, ``measure``,
``group_code``, ``group_system`` (first coding of ``group.code``; text if no coding),
``stratifier_code``, ``stratum_value``, ``stratum_components``, ``population_code``,
``count``, ``measure_score`` (``measureScore.value``), ``status``, ``type``, ``reporter``,
and ``_record``: the 1-based row number in this flattened order.

**Group totals vs strata.** A group total row has ``stratifier_code`` null; every stratum
row has it set (a stratifier without a code gets ``#1``, ``#2``..., its position in the
group). Each stratifier re-partitions the same total, so the pipeline must sum either the
total rows or the rows of one stratifier, never across them. ``stratum_value`` is the
code (else text) of ``stratum.value``; ``stratum_components`` is ``CODE=VALUE`` pairs of
``stratum.component`` sorted by code and joined by ``;`` (e.g. ``AGE=0-4;SEX=F``).
A stratifier with several codes has them joined by ``;``.

An invalid MeasureReport uses one record number (where its first row would have been)
for its :class:`Unreadable` entry, so record numbers stay unique. Bundle entries of
other types (Location, Organization...) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from epibridge.adapters.base import RawTable, Unreadable, raw_from_arrow, strings_table
from epibridge.adapters.fhir import (
    Json,
    bundle_resources,
    invalid_resource,
    json_as_list,
    json_coding,
    json_identifier,
    json_obj,
    json_objs,
    json_reference,
    json_show,
    json_text,
    load_json,
)
from epibridge.model.errors import SourceError

MEASURE_REPORT_COLUMNS: tuple[str, ...] = (
    "report_id",
    "subject",
    "period_start",
    "period_end",
    "measure",
    "group_code",
    "group_system",
    "stratifier_code",
    "stratum_value",
    "stratum_components",
    "population_code",
    "count",
    "measure_score",
    "status",
    "type",
    "reporter",
)


def read_measure_reports(path: Path, options: Mapping[str, Any]) -> RawTable:
    """Read a MeasureReport or a Bundle of MeasureReports; see the module docstring."""
    path = Path(path)
    document = load_json(path)
    resource_type = document.get("resourceType")
    if resource_type == "MeasureReport":
        reports: list[tuple[str, Json]] = [("MeasureReport", document)]
    elif resource_type == "Bundle":
        reports = [
            (where, resource)
            for _, where, resource, _ in bundle_resources(path, document)
            if not isinstance(resource, dict) or resource.get("resourceType") == "MeasureReport"
        ]
    else:
        raise SourceError(
            path,
            f"expected a FHIR MeasureReport or Bundle, found resourceType {resource_type!r}",
            "choose the adapter for this file's format",
        )

    columns: dict[str, list[str | None]] = {name: [] for name in MEASURE_REPORT_COLUMNS}
    records: list[int] = []
    unreadable: list[Unreadable] = []
    record = 0
    for where, report in reports:
        problem = invalid_resource(report, "MeasureReport")
        if problem is not None:
            record += 1
            unreadable.append(Unreadable(record, where, json_show(report), f"{where}: {problem}"))
            continue
        for row in _report_rows(report):
            record += 1
            for name in MEASURE_REPORT_COLUMNS:
                columns[name].append(row.get(name))
            records.append(record)
    return raw_from_arrow(path, strings_table(columns, records), tuple(unreadable))


def _report_rows(report: Json) -> Iterable[dict[str, str | None]]:
    period = json_obj(report.get("period"))
    base: dict[str, str | None] = {
        "report_id": json_text(report.get("id")) or json_identifier(report.get("identifier")),
        "subject": _subject(report),
        "period_start": json_text(period.get("start")),
        "period_end": json_text(period.get("end")),
        "measure": json_text(report.get("measure")),
        "status": json_text(report.get("status")),
        "type": json_text(report.get("type")),
        "reporter": json_reference(report.get("reporter")),
    }
    for group in json_objs(report.get("group")):
        code, system = json_coding(group.get("code"))
        at_group = {**base, "group_code": code, "group_system": system}
        yield from _population_rows(at_group, group)
        for position, stratifier in enumerate(json_objs(group.get("stratifier")), start=1):
            codes = [json_coding(c)[0] for c in json_as_list(stratifier.get("code"))]
            stratifier_code = ";".join(c for c in codes if c) or f"#{position}"
            for stratum in json_objs(stratifier.get("stratum")):
                pairs = []
                for component in json_objs(stratum.get("component")):
                    key = json_coding(component.get("code"))[0] or ""
                    value = json_coding(component.get("value"))[0] or ""
                    pairs.append(f"{key}={value}")
                yield from _population_rows(
                    {
                        **at_group,
                        "stratifier_code": stratifier_code,
                        "stratum_value": json_coding(stratum.get("value"))[0],
                        "stratum_components": ";".join(sorted(pairs)) or None,
                    },
                    stratum,
                )


def _population_rows(
    context: dict[str, str | None], element: Json
) -> Iterable[dict[str, str | None]]:
    score = json_text(json_obj(element.get("measureScore")).get("value"))
    populations = json_objs(element.get("population"))
    if not populations:
        yield {**context, "measure_score": score}
    for population in populations:
        yield {
            **context,
            "population_code": json_coding(population.get("code"))[0],
            "count": json_text(population.get("count")),
            "measure_score": score,
        }


def _subject(report: Json) -> str | None:
    subject = json_obj(report.get("subject"))
    reference = json_text(subject.get("reference"))
    if reference and reference.startswith("#"):
        for contained in json_objs(report.get("contained")):
            if contained.get("id") == reference[1:]:
                return json_identifier(contained.get("identifier")) or reference
    return json_reference(subject)
