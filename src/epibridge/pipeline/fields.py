"""The first layers of harmonize: each mapped field's source text, then its typed value.

Code maps, date formats and number parsing as profiles declare them (``docs/profiles.md``);
every parser returns NULL for text it cannot read, and ``pipeline.validate`` turns
"had text but no value" into a quarantine rule.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from epibridge.model.profile import FieldMap, Profile
from epibridge.pipeline import vocabulary
from epibridge.pipeline.parse import (
    blank_to_null,
    map_codes,
    parse_count,
    parse_date,
    parse_number,
    source,
)
from epibridge.registry import diseases

DATE_FIELDS = ("date_onset", "date_diagnosis", "date_report")


MEASURE, VALUE = "_measure", "_value"


#: How each model field is read from text.
KINDS = {
    "case_id": "text",
    "disease": "code",
    "disease_detail": "text",
    "date_onset": "date",
    "date_diagnosis": "date",
    "date_report": "date",
    "sex": "code",
    "age_years": "age",
    "age_band": "band",
    "classification": "code",
    "outcome": "code",
    "imported": "code",
    "country_of_infection": "country",
    "pathogen_detail": "text",
    "case_count": "count",
    "cases": "count",
    "deaths": "count",
    "reports_expected": "count",
    "reports_received": "count",
    "reports_on_time": "count",
    "population": "count",
    "source": "text",
}


WHAT = {
    "disease": "disease",
    "sex": "sex",
    "classification": "classification",
    "outcome": "outcome",
    "imported": "yes/no value",
    "age_band": "age band",
}


def disease_codes(fm: FieldMap | None) -> dict[str, str]:
    """Source value -> regional disease code: the profile's map, else registry codes."""
    if fm is not None and fm.codes:
        codes = dict(fm.codes)
    else:
        codes = {code: code for code in diseases.diseases()}
        for d in diseases.diseases().values():
            for icd in d.icd10:
                if "-" not in icd:
                    codes.setdefault(icd, d.code)
    if fm is not None and fm.codes_from:
        country, _, system = fm.codes_from.partition(":")
        codes.update(diseases.national_map(country, system))
    return codes


def codes_for(name: str, fm: FieldMap) -> dict[str, str]:
    if name == "disease":
        return disease_codes(fm)
    defaults = vocabulary.DEFAULTS.get(name, {})
    return dict(fm.codes) or dict(defaults)


#: Code maps longer than this are applied by a join, not a chain of comparisons: a CASE
#: with the disease registry's 120 codes cost 7 s on ten million rows, the join 0.3 s.
_JOIN_CODES_ABOVE = 12


def code_maps(profile: Profile) -> dict[str, dict[str, str]]:
    """The code map of every field mapped through codes, keys folded unless case-sensitive."""
    maps: dict[str, dict[str, str]] = {}
    for name, fm in profile.fields.items():
        kind = KINDS[name]
        if kind == "code" or (kind == "band" and fm.codes):
            codes = codes_for(name, fm)
            maps[name] = (
                codes if fm.case_sensitive else {k.strip().upper(): v for k, v in codes.items()}
            )
    return maps


def join_codes(t: ir.Table, profile: Profile, maps: dict[str, dict[str, str]]) -> ir.Table:
    """Layer 1b: large code maps applied as joins on the folded source text."""
    for name, codes in maps.items():
        if len(codes) <= _JOIN_CODES_ABOVE:
            continue
        table = ibis.memtable({f"_k_{name}": list(codes), f"_c_{name}": list(codes.values())})
        src = t[f"_s_{name}"]
        key = src if profile.fields[name].case_sensitive else src.upper()
        t = t.left_join(table, key == table[f"_k_{name}"]).drop(f"_k_{name}")
    return t


def label_of(fm: FieldMap, name: str) -> str:
    return str(fm.column) if fm.column else f"{name} (constant)"


def source_layer(t: ir.Table, profile: Profile) -> dict[str, ir.Value]:
    """Layer 1: trimmed source text of every mapped field (NULL for "no value")."""
    out: dict[str, ir.Value] = {}
    for name, fm in profile.fields.items():
        out[f"_s_{name}"] = (
            blank_to_null(source(t, fm.column), fm.missing)
            if fm.column
            else ibis.literal(fm.value).cast("string")
        )
    spec = profile.measures
    if spec is not None:
        out["_s__mcode"] = blank_to_null(source(t, spec.column))
        out["_s__mvalue"] = blank_to_null(source(t, spec.value))
        if spec.strata_column:
            out["_s__stratum"] = blank_to_null(source(t, spec.strata_column)).fill_null("")
        if spec.deleted_column:
            out["_s__deleted"] = blank_to_null(source(t, spec.deleted_column))
    return out


def typed_layer(
    t: ir.Table, profile: Profile, maps: dict[str, dict[str, str]], known: dict[str, list[str]]
) -> dict[str, ir.Value]:
    """Layer 2: every mapped field parsed or mapped from its source text."""
    out: dict[str, ir.Value] = {}
    for name, fm in profile.fields.items():
        src = t[f"_s_{name}"]
        kind = KINDS[name]
        if name in maps:
            known[label_of(fm, name)] = sorted(set(codes_for(name, fm)))
            value = (
                t[f"_c_{name}"]
                if f"_c_{name}" in t.columns
                else map_codes(src, maps[name], case_sensitive=True if fm.case_sensitive else None)
            )
            out[name] = value.cast("boolean") if name == "imported" else value
        elif kind == "date":
            out[name] = parse_date(src, fm.formats)
        elif kind == "count":
            out[name] = parse_count(src)
        elif kind == "age":
            out[name] = parse_number(src)
        elif kind == "country":
            out[name] = t["_country"]
        else:
            out[name] = src
    spec = profile.measures
    if spec is not None:
        code = t["_s__mcode"]
        known[spec.column] = sorted(spec.map)
        # Disease "" (reporting forms covering all diseases) is null in the model.
        disease = code.substitute({k: v[0] for k, v in spec.map.items()}, else_=ibis.null())
        out["disease"] = ibis.ifelse(disease == "", ibis.null(), disease).cast("string")
        out[MEASURE] = code.substitute(
            {k: v[1] for k, v in spec.map.items()}, else_=ibis.null()
        ).cast("string")
        out[VALUE] = parse_count(t["_s__mvalue"])
        if spec.strata_column:
            stratum = t["_s__stratum"]
            known[spec.strata_column] = sorted(spec.strata)
            ages = {k: v[0] or "" for k, v in spec.strata.items()}
            sexes = {k: v[1] or "" for k, v in spec.strata.items()}
            out["_age"] = stratum.substitute(ages, else_=ibis.null()).cast("string")
            out["age_band"] = ibis.ifelse(out["_age"] == "", ibis.null(), out["_age"])
            sex = stratum.substitute(sexes, else_=ibis.null())
            out["sex"] = ibis.ifelse(sex == "", ibis.null(), sex).cast("string")
    return out
