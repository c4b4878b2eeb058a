"""Geography registry: administrative units, crosswalks, adjacency and population.

The data ship as versioned files in ``epibridge/registry/data/geography`` and are
built reproducibly by ``scripts/build_geography.py``; see ``SOURCES.md`` there for
provenance and licences of every file.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources

import pyarrow as pa

__all__ = [
    "Adjacency",
    "CrosswalkRow",
    "PopulationRow",
    "Unit",
    "adjacency",
    "crosswalk",
    "normalise_name",
    "population",
    "registry_version",
    "resolve",
    "suggest",
    "to_current",
    "unit",
    "units",
    "units_table",
    "valid_on",
]

_DATA_PACKAGE = "epibridge.registry"
_DATA_DIR = ("data", "geography")


@dataclass(frozen=True)
class Unit:
    """One administrative unit at one level, valid over a date range."""

    country: str
    code: str
    level: int
    name: str
    name_local: str
    alt_names: tuple[str, ...]
    parent: str | None
    valid_from: date | None
    valid_to: date | None
    lon: float | None
    lat: float | None
    source: str = ""

    def valid_on(self, on: date) -> bool:
        """True when the unit exists on ``on`` (open ends are unbounded)."""
        if self.valid_from is not None and on < self.valid_from:
            return False
        return not (self.valid_to is not None and on > self.valid_to)


@dataclass(frozen=True)
class CrosswalkRow:
    """Share ``weight`` of ``old_code`` becomes part of ``new_code`` on ``effective``."""

    country: str
    old_code: str
    new_code: str
    effective: date
    weight: float
    note: str


@dataclass(frozen=True)
class Adjacency:
    """Two units sharing a border (``code_a < code_b``)."""

    code_a: str
    code_b: str
    country_a: str
    country_b: str
    cross_border: bool
    shared_border_km: float


@dataclass(frozen=True)
class PopulationRow:
    """A population figure for a unit and year, with its source."""

    country: str
    code: str
    year: int
    population: int
    source: str


# --------------------------------------------------------------------------- io


def _read_text(name: str) -> str:
    return resources.files(_DATA_PACKAGE).joinpath(*_DATA_DIR, name).read_text(encoding="utf-8")


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_read_text(name))))


def _opt_date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _opt_float(text: str) -> float | None:
    return float(text) if text else None


@functools.cache
def _all_units() -> tuple[Unit, ...]:
    out = []
    for r in _rows("units.csv"):
        out.append(
            Unit(
                country=r["country"],
                code=r["code"],
                level=int(r["level"]),
                name=r["name"],
                name_local=r["name_local"],
                alt_names=tuple(a for a in r["alt_names"].split("|") if a),
                parent=r["parent"] or None,
                valid_from=_opt_date(r["valid_from"]),
                valid_to=_opt_date(r["valid_to"]),
                lon=_opt_float(r["lon"]),
                lat=_opt_float(r["lat"]),
                source=r["source"],
            )
        )
    return tuple(out)


@functools.cache
def _by_code() -> dict[str, Unit]:
    return {u.code: u for u in _all_units()}


def registry_version() -> str:
    """Version of the shipped geography data (calendar versioning)."""
    return _read_text("VERSION").strip()


def units(country: str | None = None) -> list[Unit]:
    """All units, or those of one ISO 3166-1 alpha-3 country."""
    if country is None:
        return list(_all_units())
    c = country.upper()
    return [u for u in _all_units() if u.country == c]


def unit(code: str) -> Unit:
    """The unit with this registry code; ``KeyError`` if unknown."""
    try:
        return _by_code()[code]
    except KeyError:
        raise KeyError(
            f"unknown geography code {code!r}: not in the epibridge geography registry "
            f"{registry_version()} (codes look like 'VN-44', 'KH-12', 'BR-11001')"
        ) from None


def admin_chain(code: str) -> dict[int, str]:
    """The unit and all its parents, by admin level: ``{1: "PE-16", 2: "PE-1602", ...}``."""
    chain: dict[int, str] = {}
    current: Unit | None = unit(code)
    while current is not None:
        chain[current.level] = current.code
        current = unit(current.parent) if current.parent else None
    return chain


def valid_on(code: str, on: date) -> bool:
    """True when the unit ``code`` exists on date ``on``."""
    return unit(code).valid_on(on)


# ---------------------------------------------------------------- normalising

_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff]")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_FOLD = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ł": "l", "ø": "o", "臺": "台"})
_TOKEN_SUBST = {"dist": "district", "twp": "township", "st": "saint", "sta": "santa"}
# Type words dropped at the start or end of a name (after folding and lower-casing).
_PREFIXES = (
    "thanh pho",
    "tinh",
    "tp",
    "province of",
    "provincia de",
    "provincia",
    "departamento de",
    "departamento",
    "region",
    "khett",
    "khet",
    "krong",
    "changwat",
    "khoueng",
    "ខេត្ត",
    "រាជធានី",
    "ក្រុង",
    "จังหวัด",
    "ແຂວງ",
    "ນະຄອນຫຼວງ",
)
_SUFFIXES = ("province", "provincia", "region", "department", "departamento", "division", "rdhs")


def normalise_name(text: str) -> str:
    """Fold a place name for matching: case, accents, punctuation, type words.

    Latin diacritics are removed (Vietnamese included, ``Đ`` -> ``d``); other
    scripts keep their combining marks, so Khmer, Lao, Thai and Burmese names
    stay intact. Leading type words such as "Tỉnh", "Thành phố", "Province of",
    "Region" and trailing "Province"/"Region" are dropped; "Dist." becomes
    "district". "City" and "County" are kept (Taiwan has both of one name).
    """
    t = unicodedata.normalize("NFKD", text.translate(_FOLD))
    t = _COMBINING.sub("", t).translate(_FOLD)
    t = unicodedata.normalize("NFC", t).casefold()
    t = _NON_WORD.sub(" ", t)
    tokens = [_TOKEN_SUBST.get(tok, tok) for tok in t.split()]
    full = " ".join(tokens)
    out = full
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if out.startswith(p + " ") or (
                out.startswith(p) and not p.isascii() and len(out) > len(p)
            ):
                out = out[len(p) :].strip()
                changed = True
        for s in _SUFFIXES:
            if out.endswith(" " + s):
                out = out[: -len(s) - 1].strip()
                changed = True
    return out or full


# ------------------------------------------------------------------ resolving


@functools.cache
def _name_index(country: str) -> dict[str, tuple[Unit, ...]]:
    idx: dict[str, list[Unit]] = {}
    for u in units(country):
        keys = {normalise_name(n) for n in (u.name, u.name_local, u.code, *u.alt_names) if n}
        for k in keys:
            if k:
                idx.setdefault(k, []).append(u)
    return {k: tuple(v) for k, v in idx.items()}


_NULLS = {"", "na", "n a", "nan", "null", "none", "n", "unknown", "desconocido"}


def _is_descendant(u: Unit, ancestor: Unit) -> bool:
    parent = u.parent
    while parent is not None:
        if parent == ancestor.code:
            return True
        p = _by_code().get(parent)
        parent = p.parent if p is not None else None
    return False


def _pick(cands: list[Unit], on: date | None) -> Unit | None:
    if on is not None:
        cands = [u for u in cands if u.valid_on(on)]
    elif len(cands) > 1:
        current = [u for u in cands if u.valid_to is None]
        cands = current or cands
    if not cands:
        return None
    top = min(u.level for u in cands)
    cands = [u for u in cands if u.level == top]
    return cands[0] if len(cands) == 1 else None


def _match(country: str, name: str, under: Unit | None, on: date | None) -> Unit | None:
    key = normalise_name(name)
    if key in _NULLS:
        return None
    cands = list(_name_index(country).get(key, ()))
    if under is None:
        level1 = [u for u in cands if u.level == 1]
        return _pick(level1 or cands, on)
    return _pick([u for u in cands if _is_descendant(u, under)], on)


def resolve(country: str, names: Sequence[str | None], on: date | None = None) -> Unit | None:
    """Resolve a path of names (level 1 first) to the finest matching unit.

    Each name is matched by :func:`normalise_name` against a unit's name,
    local-script name, alternative spellings and code, among the descendants of
    the unit matched so far. Resolution stops at the first name that is empty,
    unknown or ambiguous and returns the unit matched up to there (``None`` if
    even the first name fails). With ``on`` only units valid on that date are
    considered; without it, currently valid units win ties with retired ones.
    If the first name does not match but the first two joined do (a split
    "North", "Western" for "North Western"), the joined name is used.
    """
    c = country.upper()
    path = [n for n in names]
    if not path or path[0] is None:
        return None
    first = _match(c, path[0], None, on)
    if first is None and len(path) > 1 and path[1] is not None:
        first = _match(c, f"{path[0]} {path[1]}", None, on)
        if first is not None:
            path = [f"{path[0]} {path[1]}", *path[2:]]
    if first is None:
        return None
    current = first
    for name in path[1:]:
        if name is None:
            break
        nxt = _match(c, name, current, on)
        if nxt is None:
            break
        current = nxt
    return current


def suggest(country: str, name: str, level: int | None = None, limit: int = 3) -> list[str]:
    """Nearest known unit names for a "did you mean" message."""
    from rapidfuzz import fuzz, process

    choices: dict[str, str] = {}
    for u in units(country):
        if level is not None and u.level != level:
            continue
        for n in (u.name, u.name_local, *u.alt_names):
            if n:
                choices.setdefault(normalise_name(n), u.name)
    hits = process.extract(normalise_name(name), list(choices), scorer=fuzz.WRatio, limit=limit * 4)
    out: list[str] = []
    for key, _score, _i in hits:
        label = choices[key]
        if label not in out:
            out.append(label)
        if len(out) == limit:
            break
    return out


# ------------------------------------------------------------ other tables


@functools.cache
def _crosswalk() -> tuple[CrosswalkRow, ...]:
    return tuple(
        CrosswalkRow(
            country=r["country"],
            old_code=r["old_code"],
            new_code=r["new_code"],
            effective=date.fromisoformat(r["effective"]),
            weight=float(r["weight"]),
            note=r["note"],
        )
        for r in _rows("crosswalk.csv")
    )


def crosswalk(country: str | None = None) -> list[CrosswalkRow]:
    """Rows mapping retired units to their successors."""
    return [r for r in _crosswalk() if country is None or r.country == country.upper()]


def to_current(code: str, on: date) -> list[tuple[str, float]]:
    """Units valid on ``on`` that ``code`` became, with the share of ``code`` in each.

    A unit still valid on ``on`` maps to itself with weight 1.0. Chains of
    changes are followed and weights multiplied. Empty if nothing is known.
    """
    u = unit(code)
    if u.valid_on(on):
        return [(code, 1.0)]
    out: dict[str, float] = {}
    for row in _crosswalk():
        if row.old_code == code and row.effective <= on:
            for new, w in to_current(row.new_code, on):
                out[new] = out.get(new, 0.0) + w * row.weight
    return sorted(out.items())


@functools.cache
def _adjacency() -> tuple[Adjacency, ...]:
    return tuple(
        Adjacency(
            code_a=r["code_a"],
            code_b=r["code_b"],
            country_a=r["country_a"],
            country_b=r["country_b"],
            cross_border=r["cross_border"] == "true",
            shared_border_km=float(r["shared_border_km"]),
        )
        for r in _rows("adjacency.csv")
    )


def adjacency(cross_border_only: bool = False) -> list[Adjacency]:
    """Pairs of neighbouring admin-1 units (pre- and post-2025 Viet Nam both)."""
    return [a for a in _adjacency() if a.cross_border or not cross_border_only]


@functools.cache
def _population() -> tuple[PopulationRow, ...]:
    return tuple(
        PopulationRow(
            country=r["country"],
            code=r["code"],
            year=int(r["year"]),
            population=int(r["population"]),
            source=r["source"],
        )
        for r in _rows("population.csv")
    )


def population(country: str | None = None) -> list[PopulationRow]:
    """Population figures that have a named source (see SOURCES.md for gaps)."""
    return [r for r in _population() if country is None or r.country == country.upper()]


_UNITS_SCHEMA = pa.schema(
    [
        ("country", pa.string()),
        ("code", pa.string()),
        ("level", pa.int8()),
        ("name", pa.string()),
        ("name_local", pa.string()),
        ("alt_names", pa.list_(pa.string())),
        ("parent", pa.string()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("source", pa.string()),
    ]
)


def units_table() -> pa.Table:
    """All units as a typed Arrow table (``alt_names`` as a list column)."""
    us = _all_units()
    return pa.table(
        {
            "country": [u.country for u in us],
            "code": [u.code for u in us],
            "level": [u.level for u in us],
            "name": [u.name for u in us],
            "name_local": [u.name_local or None for u in us],
            "alt_names": [list(u.alt_names) for u in us],
            "parent": [u.parent for u in us],
            "valid_from": [u.valid_from for u in us],
            "valid_to": [u.valid_to for u in us],
            "lon": [u.lon for u in us],
            "lat": [u.lat for u in us],
            "source": [u.source for u in us],
        },
        schema=_UNITS_SCHEMA,
    )
