"""Resolve the distinct values of a column once, in Python, and join the answer back.

Places, countries of infection and DHIS2/FHIR periods need registry logic (name
normalisation, fuzzy suggestions, dated validity, period grammars) that is not tabular.
A national file has millions of rows but only thousands of distinct places, so each
distinct value is resolved once here and the result is joined to the data as a small
table: the per-row work stays in the engine. The resolvers take and return Arrow tables
and do no I/O; ``join_lookups`` and ``place_layer`` are the Ibis side: the join, and the
choice of unit by date (validity, crosswalks, same-named predecessors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
import pyarrow as pa
import pycountry
from rapidfuzz import process

from epibridge.model.profile import Profile
from epibridge.pipeline.parse import blank_to_null, source
from epibridge.registry import calendars, geography

AREA_COLUMNS = (
    "admin1",
    "admin2",
    "admin3",
    "area",
    "area_level",
    "_area_from",
    "_area_to",
    "_area_next",
    "_area_alt",
    "_alt_to",
    "_area_problem",
    "_area_field",
    "_area_value",
    "_area_suggest",
)


def _children(country: str) -> set[str]:
    return {u.parent for u in geography.units(country) if u.parent}


def _area_row(
    country: str,
    path: Sequence[str | None],
    columns: Sequence[str],
    match: str,
    codes: dict[str, str],
    with_children: set[str],
) -> dict[str, object]:
    row: dict[str, object] = {c: None for c in AREA_COLUMNS}
    row.update(admin1=None, area=country, area_level=0)
    names = [p for p in path]
    if match == "code":
        # Codes: the finest non-empty column is looked up directly.
        finest = next(
            ((c, v) for c, v in reversed(list(zip(columns, names, strict=True))) if v), None
        )
        if finest is None:
            return row
        # A FHIR identifier arrives as "system|value": the value is the code.
        value = finest[1].rsplit("|", 1)[-1]
        code = codes.get(finest[1], codes.get(value, value))
        try:
            found: geography.Unit | None = geography.unit(code)
        except KeyError:
            found = geography.resolve(country, [value])
            if found is None:
                row.update(
                    _area_problem="unknown_area",
                    _area_field=finest[0],
                    _area_value=finest[1],
                    _area_suggest=", ".join(geography.suggest(country, finest[1])),
                )
                return row
        assert found is not None
        return _fill(row, found)
    unit: geography.Unit | None = None
    for depth in range(1, len(names) + 1):
        if not names[depth - 1]:
            break
        mapped = [codes.get(n, n) if n else n for n in names[:depth]]
        found = geography.resolve(country, mapped)
        if found is None or found.level < depth:
            parent_known = unit.code if unit is not None else None
            if depth == 1 or (parent_known in with_children):
                name = str(names[depth - 1])
                row.update(
                    _area_problem="unknown_area",
                    _area_field=columns[depth - 1],
                    _area_value=name,
                    _area_suggest=_elsewhere(country, name, depth)
                    or ", ".join(geography.suggest(country, name, depth)),
                )
                return row
            break  # the registry knows no units below this one: keep the coarser unit
        unit = found
    if unit is None:
        return row
    row = _fill(row, unit)
    if unit.valid_from is not None and unit.level == 1:
        # A name kept across a reorganisation (Viet Nam 2025: "Ha Noi", "Ho Chi Minh City")
        # matches the new unit; records dated before it belong to the old one.
        before = geography.resolve(
            country,
            [codes.get(n, n) if n else n for n in names[:1]],
            on=unit.valid_from - timedelta(days=1),
        )
        if before is not None and before.code != unit.code and before.level == 1:
            row.update(_area_alt=before.code, _alt_to=before.valid_to)
    return row


def _elsewhere(country: str, name: str, level: int) -> str:
    """Units of that name under another parent: a place filed under the wrong province."""
    key = geography.normalise_name(name)
    found = [
        u
        for u in geography.units(country)
        if u.level == level and geography.normalise_name(u.name) == key and u.parent
    ]
    return ", ".join(
        f"{u.code} ({u.name}, in {geography.unit(str(u.parent)).name})" for u in found[:3]
    )


def _fill(row: dict[str, object], unit: geography.Unit) -> dict[str, object]:
    for level, code in geography.admin_chain(unit.code).items():
        row[f"admin{level}"] = code
    row.update(
        area=unit.code, area_level=unit.level, _area_from=unit.valid_from, _area_to=unit.valid_to
    )
    successors = geography.to_current(unit.code, date.max) if unit.valid_to else []
    whole = [code for code, weight in successors if weight >= 0.999]
    if len(whole) == 1 and whole[0] != unit.code:
        row["_area_next"] = whole[0]
    return row


def resolve_areas(
    distinct: pa.Table, country: str, columns: Sequence[str], match: str, codes: dict[str, str]
) -> pa.Table:
    """One row per distinct place path: registry codes, validity, or the problem found."""
    with_children = _children(country)
    key_names = [f"_akey{i}" for i in range(len(columns))]
    paths = (
        zip(*(distinct.column(i).to_pylist() for i in range(len(columns))), strict=True)
        if columns
        else iter([()])
    )
    rows = []
    for path in paths:
        row = _area_row(country, path, columns, match, codes, with_children)
        row.update(dict(zip(key_names, path, strict=True)))
        rows.append(row)
    schema = pa.schema(
        [(k, pa.string()) for k in key_names]
        + [
            ("admin1", pa.string()),
            ("admin2", pa.string()),
            ("admin3", pa.string()),
            ("area", pa.string()),
            ("area_level", pa.int8()),
            ("_area_from", pa.date32()),
            ("_area_to", pa.date32()),
            ("_area_next", pa.string()),
            ("_area_alt", pa.string()),
            ("_alt_to", pa.date32()),
            ("_area_problem", pa.string()),
            ("_area_field", pa.string()),
            ("_area_value", pa.string()),
            ("_area_suggest", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def country_code(name: str) -> str | None:
    """ISO 3166-1 alpha-3 for a country name or code as written in surveillance exports."""
    text = name.strip()
    attempts: list[Callable[[], Any]] = [
        lambda: pycountry.countries.get(alpha_3=text.upper()),
        lambda: pycountry.countries.get(alpha_2=text.upper()),
        lambda: pycountry.countries.lookup(text),
    ]
    for attempt in attempts:
        try:
            found = attempt()
        except LookupError:
            found = None
        if found is not None:
            return str(found.alpha_3)
    try:
        matches = pycountry.countries.search_fuzzy(text)
    except LookupError:
        return None
    return str(matches[0].alpha_3) if len(matches) == 1 else None


def country_suggestions(name: str, limit: int = 3) -> str:
    names = [c.name for c in pycountry.countries]
    found = process.extract(name, names, limit=limit, processor=_squash)
    return ", ".join(m[0] for m in found)


def _squash(text: str) -> str:
    """Compare names without case, spaces or punctuation ("SRILANKA" ~ "Sri Lanka")."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def resolve_countries(values: Sequence[str | None], codes: dict[str, str]) -> pa.Table:
    """Distinct country names -> ISO alpha-3, with suggestions for the unknown ones."""
    rows = []
    folded = {k.strip().upper(): v for k, v in codes.items()}
    for value in values:
        if value is None:
            continue
        code = folded.get(value.strip().upper()) or country_code(value)
        rows.append(
            {
                "_ckey": value,
                "_country": code,
                "_csuggest": None if code else country_suggestions(value),
            }
        )
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("_ckey", pa.string()), ("_country", pa.string()), ("_csuggest", pa.string())]
        ),
    )


_PERIOD_SCHEMA = pa.schema(
    [
        ("_pkey", pa.string()),
        ("_pkey2", pa.string()),
        ("_p_label", pa.string()),
        ("_p_type", pa.string()),
        ("_p_calendar", pa.string()),
        ("_p_start", pa.date32()),
        ("_p_end", pa.date32()),
        ("_p_problem", pa.string()),
    ]
)


def resolve_dhis2_periods(values: Sequence[str | None]) -> pa.Table:
    """Distinct DHIS2 period strings -> canonical periods (or the reason they fail)."""
    rows: list[dict[str, object]] = []
    for value in values:
        if value is None:
            continue
        try:
            p = calendars.parse_dhis2_period(value.strip())
        except ValueError as exc:
            rows.append({"_pkey": value, "_p_problem": str(exc)})
            continue
        rows.append(
            {
                "_pkey": value,
                "_p_label": p.label,
                "_p_type": p.type,
                "_p_calendar": p.calendar,
                "_p_start": p.start,
                "_p_end": p.end,
            }
        )
    return pa.Table.from_pylist(rows, schema=_PERIOD_SCHEMA)


_WEEKDAY_SYSTEM = {0: "iso", 6: "cdc", 1: "tue", 2: "wed", 3: "thu", 4: "fri", 5: "sat"}


def period_from_bounds(start: date, end: date) -> calendars.Period:
    """Classify an explicit [start, end] interval (FHIR ``period``) as a calendar period."""
    days = (end - start).days + 1
    if days == 1:
        return calendars.period_containing(start, "day")
    if days == 7:
        system = _WEEKDAY_SYSTEM[start.weekday()]
        return calendars.period_containing(start, "week", system)
    for kind in ("month", "quarter", "year"):
        candidate = calendars.period_containing(start, kind)
        if candidate.start == start and candidate.end == end:
            return candidate
    raise ValueError(f"{start}..{end} ({days} days) is not a day, week, month, quarter or year")


def resolve_bounds(pairs: Sequence[tuple[str | None, str | None]]) -> pa.Table:
    rows = []
    for start_text, end_text in pairs:
        row: dict[str, object] = {"_pkey": start_text, "_pkey2": end_text}
        try:
            start = date.fromisoformat(str(start_text)[:10])
            end = date.fromisoformat(str(end_text)[:10]) if end_text else start
            # FHIR periods are often written with an exclusive end at midnight.
            if end_text and "T00:00" in end_text and end > start:
                end -= timedelta(days=1)
            p = period_from_bounds(start, end)
            row.update(
                _p_label=p.label,
                _p_type=p.type,
                _p_calendar=p.calendar,
                _p_start=p.start,
                _p_end=p.end,
            )
        except ValueError as exc:
            row["_p_problem"] = f"period {start_text}..{end_text}: {exc}"
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=_PERIOD_SCHEMA)


AREA_FIELDS = ("admin1", "admin2", "admin3", "area", "area_level")


@dataclass(frozen=True)
class Lookups:
    """Small tables resolved once per distinct value (see ``pipeline.lookups``)."""

    areas: pa.Table | None = None
    countries: pa.Table | None = None
    periods: pa.Table | None = None
    #: case ids seen more than once, with their first record (see ``repeated_ids``)
    repeated_ids: pa.Table | None = None


def area_keys(raw: ir.Table, profile: Profile) -> ir.Table:
    """The place columns, as the keys the area lookup is built on and joined by."""
    keys = {
        f"_akey{i}": blank_to_null(source(raw, c), profile.area.missing).fill_null("")
        for i, c in enumerate(profile.area.columns)
    }
    return raw.mutate(**keys) if keys else raw


def join_lookups(raw: ir.Table, profile: Profile, lookups: Lookups) -> ir.Table:
    if profile.area.columns:
        if lookups.areas is None:
            raise ValueError("the area lookup is missing")
        keyed = area_keys(raw, profile)
        areas = ibis.memtable(lookups.areas)
        areas = areas.rename({f"_la_{c}": c for c in AREA_FIELDS})
        keys = [f"_akey{i}" for i in range(len(profile.area.columns))]
        raw = keyed.left_join(areas, keys).drop(s.endswith("_right")).drop(*keys)
    spec = profile.period
    if lookups.periods is not None:
        periods = ibis.memtable(lookups.periods)
        if spec.dhis2:
            raw = raw.mutate(_pk=blank_to_null(source(raw, spec.dhis2)).fill_null(""))
            raw = raw.left_join(periods.drop("_pkey2"), raw["_pk"] == periods["_pkey"]).drop(
                "_pk", "_pkey"
            )
        else:
            raw = raw.mutate(
                _pk=blank_to_null(source(raw, str(spec.start))).fill_null(""),
                _pk2=blank_to_null(source(raw, str(spec.end))).fill_null(""),
            )
            raw = raw.left_join(
                periods, [raw["_pk"] == periods["_pkey"], raw["_pk2"] == periods["_pkey2"]]
            ).drop("_pk", "_pk2", "_pkey", "_pkey2")
    if lookups.countries is not None:
        fm = profile.fields["country_of_infection"]
        countries = ibis.memtable(lookups.countries)
        raw = raw.mutate(_ck=blank_to_null(source(raw, str(fm.column)), fm.missing))
        raw = raw.left_join(countries, raw["_ck"] == countries["_ckey"]).drop("_ckey", "_ck")
    return raw


def place_layer(t: ir.Table, profile: Profile) -> dict[str, ir.Value]:
    """Layer 3b: the record's units, following mergers when the profile allows it."""
    if not profile.area.columns:
        return {
            "admin1": ibis.null().cast("string"),
            "admin2": ibis.null().cast("string"),
            "admin3": ibis.null().cast("string"),
            "area": ibis.literal(profile.country),
            "area_level": ibis.literal(0, "int8"),
            "_area_invalid": ibis.literal(False),
        }
    gone = t["_area_to"].notnull() & (t["period_start"] > t["_area_to"])
    early = t["_area_from"].notnull() & (t["period_end"] < t["_area_from"])
    follow = (
        (gone & t["_area_next"].notnull() & (t["_la_area_level"] == 1))
        if profile.area.crosswalk
        else ibis.literal(False)
    )
    # Before a unit that kept its predecessor's name existed, the name meant the old unit.
    before = (
        early
        & t["_area_alt"].notnull()
        & (t["_alt_to"].isnull() | (t["period_start"] <= t["_alt_to"]))
    )
    area = ibis.cases((follow, t["_area_next"]), (before, t["_area_alt"]), else_=t["_la_area"])
    admin1 = ibis.cases((follow, t["_area_next"]), (before, t["_area_alt"]), else_=t["_la_admin1"])
    return {
        "admin1": admin1,
        "admin2": t["_la_admin2"],
        "admin3": t["_la_admin3"],
        "area": area,
        "area_level": t["_la_area_level"],
        "_area_invalid": ((gone & ~follow) | (early & ~before)).fill_null(False),
    }
