"""Type, map, place and check every record, as layered Ibis expressions.

``harmonize`` takes an adapter's raw table (strings plus ``_record``), the profile and the
small lookup tables resolved from distinct values (``pipeline.lookups``), and returns
every record with its model fields typed and ``_q_rule``, the first rule it fails
(``pipeline.validate``). :class:`Harmonized` then gives the accepted rows in the model
schema, or the quarantine rows with their messages. No row is dropped anywhere: each is
either accepted or carries the rule it failed.

The layers live in their own modules: ``fields`` (source text, typed values), ``periods``,
``lookups`` (places), ``duplicates`` and ``validate`` (the checks).

The expression is built in layers (source text -> typed fields -> period and place ->
check results -> verdict), each referring to the previous layer's columns by name. Ibis
compiles each layer as a sub-select, so a parsed date is computed once and referenced,
instead of being inlined into every check and message that mentions it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
import pyarrow as pa

from epibridge.adapters.base import RECORD
from epibridge.model.profile import Profile
from epibridge.model.schema import SCHEMAS
from epibridge.pipeline.checks import Check, any_failed, first_failed, fold
from epibridge.pipeline.duplicates import cell_key, with_duplicate_cells, with_repeated_ids
from epibridge.pipeline.fields import (
    DATE_FIELDS,
    MEASURE,
    VALUE,
    code_maps,
    join_codes,
    source_layer,
    typed_layer,
)
from epibridge.pipeline.lookups import AREA_FIELDS, Lookups, join_lookups, place_layer
from epibridge.pipeline.parse import (
    SOURCE_PREFIX,
    trim,
)
from epibridge.pipeline.periods import period_columns
from epibridge.pipeline.validate import field_checks, measure_checks, record_checks


@dataclass(frozen=True)
class Harmonized:
    """Every record with its typed fields and the rule it failed first (``_q_rule``).

    ``quarantine`` builds the readable quarantine rows (field, value, message) for the
    failed records only: building messages for every record would cost more than all
    the checks together.
    """

    table: ir.Table
    checks: Callable[[ir.Table], list[Check]]
    profile: Profile
    source_file: str
    #: Known codes per source field: the shell suggests the nearest for unknown codes.
    known: Mapping[str, list[str]]
    #: True when a record's verdict depends only on the record and the look-ups, so that
    #: harmonizing a subset of the records gives those records the same verdicts (False
    #: when records are compared with each other inside the expression: duplicate cells).
    row_local: bool = True

    def accepted(self) -> ir.Table:
        ok = self.table.filter(~self.table["_q_failed"])
        return _final(ok, self.profile, self.source_file)

    def quarantine(self) -> ir.Table:
        bad = self.table.filter(self.table["_q_failed"])
        checks = self.checks(bad)
        # Check results become columns first, so the verdict refers to them by name
        # instead of repeating each check's expression in every verdict column.
        results: dict[str, ir.Value] = {}
        for i, c in enumerate(checks):
            results[f"_f{i}"] = c.failed.fill_null(False)
            results[f"_v{i}"] = c.value.cast("string")
            results[f"_m{i}"] = c.message
            results[f"_g{i}"] = (c.suggestion if c.suggestion is not None else ibis.null()).cast(
                "string"
            )
        bad = bad.mutate(**results)
        verdict = fold(
            [
                Check(c.rule, c.field, bad[f"_f{i}"], bad[f"_v{i}"], bad[f"_m{i}"], bad[f"_g{i}"])
                for i, c in enumerate(checks)
            ]
        )
        return bad.select(
            file=ibis.literal(self.source_file),
            record=bad[RECORD],
            field=verdict["_q_field"],
            value=verdict["_q_value"],
            rule=verdict["_q_rule"],
            message=verdict["_q_message"],
            suggestion=verdict["_q_suggestion"],
            other_rules=verdict["_q_other"],
        )


def prepare(raw: ir.Table, profile: Profile, trimmed: bool = False) -> ir.Table:
    """Reshape wide sources into one row per value; give source columns a namespace; trim.

    Source columns are renamed ``in:<name>``: engines such as DuckDB compare identifiers
    case-insensitively, so a source column ``Date_Onset`` would otherwise shadow the
    model field ``date_onset`` computed from it. Surrounding spaces are never part of a
    value: text columns are trimmed here once, unless the adapter already stored them
    trimmed (``RawTable.trimmed``).
    """
    if profile.unpivot is not None:
        up = profile.unpivot
        raw = raw.pivot_longer(s.cols(*up.columns), names_to=up.name, values_to=up.value)
    named = raw.rename({SOURCE_PREFIX + c: c for c in raw.columns if c != RECORD})
    if trimmed:
        return named
    texts = [c for c in named.columns if c != RECORD and named[c].type().is_string()]
    return named.mutate(**{c: trim(named[c]) for c in texts}) if texts else named


def _layer(t: ir.Table, build: Callable[[ir.Table], Mapping[str, ir.Value]]) -> ir.Table:
    return t.mutate(**build(t))


def harmonize(
    raw: ir.Table, profile: Profile, lookups: Lookups, today: date, source_file: str
) -> Harmonized:
    """Type every field and find the first rule each record fails (NULL: accepted).

    ``raw`` is an adapter's table after :func:`prepare`.
    """
    # Reporting may cover all diseases at once; denominators have none.
    needs_disease = profile.dataset in ("cases", "counts")
    if needs_disease and "disease" not in profile.fields and profile.measures is None:
        raise ValueError(f"{profile.source_path}: [fields] disease is required")
    known: dict[str, list[str]] = {}
    t = join_lookups(raw, profile, lookups)
    maps = code_maps(profile)
    t = _layer(t, lambda t: source_layer(t, profile))
    t = join_codes(t, profile, maps)
    t = _layer(t, lambda t: typed_layer(t, profile, maps, known))

    def period(t: ir.Table) -> dict[str, ir.Value]:
        dates = {n: t[n] if n in profile.fields else ibis.null().cast("date") for n in DATE_FIELDS}
        texts = {n: t[f"_s_{n}"] for n in DATE_FIELDS if n in profile.fields}
        p = period_columns(t, profile.period, profile.country, dates, texts)
        return {
            "period": p.label,
            "period_type": p.type,
            "calendar": p.calendar,
            "period_start": p.start,
            "period_end": p.end,
            "_p_source": p.source,
            "_p_problem": p.problem,
        }

    t = _layer(t, period)
    t = _layer(t, lambda t: place_layer(t, profile))
    if lookups.repeated_ids is not None:
        t = with_repeated_ids(t, lookups.repeated_ids, source_file)
    row_local = not _compares_cells(profile)
    if not row_local:
        t = with_duplicate_cells(t, cell_key(profile)[0])

    def checks(t: ir.Table) -> list[Check]:
        return [
            *field_checks(t, profile, today),
            *measure_checks(t, profile),
            *record_checks(t, profile),
        ]

    found = checks(t)
    t = t.mutate(_q_rule=first_failed(found), _q_failed=any_failed(found))
    return Harmonized(t, checks, profile, source_file, known, row_local)


def _compares_cells(profile: Profile) -> bool:
    """Whether records are checked against each other for repeated cells.

    Counts in a long format sum their values into cells (strata of one cell arrive as
    separate values), so only wide counts are compared; a repeated reporting measure or
    population row is always a duplicate.
    """
    if profile.dataset == "counts":
        return profile.measures is None
    return profile.dataset in ("reporting", "denominators")


def _final(t: ir.Table, profile: Profile, source_file: str) -> ir.Table:
    schema = SCHEMAS[profile.dataset]
    given = set(profile.fields) | {
        "country",
        "period",
        "period_type",
        "calendar",
        "period_start",
        "period_end",
        *AREA_FIELDS,
    }
    if profile.measures is not None:
        given |= {"disease", "age_band", "sex"} if profile.measures.strata_column else {"disease"}
    out: dict[str, ir.Value] = {}
    for f in schema:
        if f.name == "country":
            value: ir.Value = ibis.literal(profile.country)
        elif f.name == "source_file":
            value = ibis.literal(source_file)
        elif f.name == "source_record":
            value = t[RECORD]
        elif f.name == "case_id" and "case_id" not in profile.fields:
            value = ibis.literal(source_file + "#").concat(t[RECORD].cast("string"))
        elif f.name == "case_count" and "case_count" not in profile.fields:
            value = ibis.literal(1)
        elif f.name == "cases" and profile.measures is not None:
            value = ibis.literal(0)
        elif f.name == "year":
            value = t["period_start"].year()
        elif f.name == "source":
            # The profile's title says where the figures come from when no column does.
            title = ibis.literal(profile.title)
            value = t["source"].fill_null(title) if "source" in profile.fields else title
        elif f.name == "disease_detail" and "disease_detail" not in profile.fields:
            value = t["_s_disease"] if "disease" in profile.fields else ibis.null()
        elif f.name in given:
            value = t[f.name]
        else:
            value = ibis.null()
        if pa.types.is_date(f.type):
            # Date arithmetic yields a timestamp on some engines (DuckDB: date - interval)
            # while Ibis still calls it a date; the round trip forces a real date.
            value = value.cast("timestamp")
        out[f.name] = value.cast(ibis.dtype(f.type).copy(nullable=True))
    if profile.measures is not None:
        out[MEASURE], out[VALUE] = t[MEASURE], t[VALUE]
    return t.select(**out)
