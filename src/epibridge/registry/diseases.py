"""Regional notifiable-disease registry and national code maps.

Countries name the same disease differently: ICD-10 A90, A91 or A97.1, Peru's
``DENGUE CON SENALES DE ALARMA``, a Thai report code. The hub can only add counts across
borders once each of those names resolves to one stable regional code such as ``DENGUE``,
so the list and the maps live here, as versioned CSV data files, read once per process.
See docs/registries/diseases.md.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

KINDS = ("disease", "syndrome")
ANY_COUNTRY = "*"
"""Country value of map rows for international code systems (ICD-10) that apply everywhere."""

_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_ICD10 = re.compile(r"([A-Z]\d{2})(?:\.(\d{1,2}))?")
_VERSION = re.compile(r"version=(\S+)")


@dataclass(frozen=True)
class Disease:
    """One regional notifiable disease or syndrome."""

    code: str
    name: str
    icd10: tuple[str, ...]
    icd11: tuple[str, ...]
    kind: str
    notes: str = ""


@dataclass(frozen=True, order=True)
class _Icd10Code:
    category: str  # "A97"
    sub: str  # "1" for A97.1, "" for the bare category


def _parse_icd10(text: str) -> _Icd10Code:
    """Parse ``A97.1``, ``a971`` or ``A97`` into its category and subdivision."""
    compact = text.strip().upper().rstrip(".")
    if "." not in compact and len(compact) > 3:
        compact = f"{compact[:3]}.{compact[3:]}"
    match = _ICD10.fullmatch(compact)
    if match is None:
        raise ValueError(f"{text!r} is not an ICD-10 code (expected e.g. A90, A97.1, A971)")
    return _Icd10Code(match.group(1), match.group(2) or "")


@dataclass(frozen=True)
class _Icd10Range:
    """An inclusive ICD-10 range; a bare category bound covers all of its subcodes."""

    low: _Icd10Code
    high: _Icd10Code

    def covers(self, code: _Icd10Code) -> bool:
        above = code.category > self.low.category or (
            code.category == self.low.category
            and (not self.low.sub or (code.sub != "" and code.sub >= self.low.sub))
        )
        below = code.category < self.high.category or (
            code.category == self.high.category
            and (
                not self.high.sub
                or (code.sub != "" and code.sub[: len(self.high.sub)] <= self.high.sub)
            )
        )
        return above and below


def _parse_range(text: str) -> _Icd10Range:
    low, _, high = text.partition("-")
    low_code = _parse_icd10(low)
    high_code = _parse_icd10(high) if high else low_code
    if high_code < low_code:
        raise ValueError(f"ICD-10 range {text!r} runs backwards")
    return _Icd10Range(low_code, high_code)


def _split(field: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in field.split(";") if part.strip())


def _read_data(name: str) -> tuple[str, list[dict[str, str]]]:
    """(version from the header comment, rows) of a data file shipped in the package."""
    text = resources.files(__package__).joinpath(f"data/{name}").read_text("utf-8")
    lines = text.splitlines()
    comments = [line for line in lines if line.startswith("#")]
    version = next((m.group(1) for c in comments if (m := _VERSION.search(c))), "")
    if not version:
        raise ValueError(f"data/{name} has no '# ... version=...' header line")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    return version, rows


@cache
def _registry() -> tuple[str, dict[str, Disease], tuple[tuple[_Icd10Range, str], ...]]:
    version, rows = _read_data("diseases.csv")
    diseases: dict[str, Disease] = {}
    ranges: list[tuple[_Icd10Range, str]] = []
    for row in rows:
        code = row["code"]
        if not _CODE.fullmatch(code):
            raise ValueError(f"diseases.csv: code {code!r} is not UPPER_SNAKE_CASE")
        if code in diseases:
            raise ValueError(f"diseases.csv: code {code!r} appears twice")
        if row["kind"] not in KINDS:
            raise ValueError(f"diseases.csv: {code} has kind {row['kind']!r}, not one of {KINDS}")
        disease = Disease(
            code=code,
            name=row["name"],
            icd10=_split(row["icd10"]),
            icd11=_split(row["icd11"]),
            kind=row["kind"],
            notes=row["notes"],
        )
        diseases[code] = disease
        ranges.extend((_parse_range(entry), code) for entry in disease.icd10)
    return version, diseases, tuple(ranges)


def registry_version() -> str:
    """Version of the disease registry (``version=`` in the diseases.csv header)."""
    return _registry()[0]


def diseases() -> dict[str, Disease]:
    """Every regional disease and syndrome, keyed by regional code (a fresh copy)."""
    return dict(_registry()[1])


def lookup_icd10(code: str) -> Disease | None:
    """The regional disease an ICD-10 code belongs to (``A90``, ``A97.1``, ``B529``...).

    Returns None for a well-formed code outside the registry; raises ValueError for text
    that is not an ICD-10 code at all, so a wrong column is not silently dropped.
    """
    parsed = _parse_icd10(code)
    _, registry, ranges = _registry()
    for icd_range, regional in ranges:
        if icd_range.covers(parsed):
            return registry[regional]
    return None


def normalise_national_code(text: str) -> str:
    """Trimmed, upper-case, accent-free, single-spaced form used as map keys.

    Line lists write ``SEÑALES`` or ``SENALES`` and vary in case; the map stores one form.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.upper().split())


@cache
def _maps() -> tuple[str, dict[tuple[str, str], dict[str, str]]]:
    version, rows = _read_data("disease_maps.csv")
    known = _registry()[1]
    maps: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        if row["code"] not in known:
            raise ValueError(f"disease_maps.csv: unknown regional code {row['code']!r}")
        key = normalise_national_code(row["national_code"])
        if key != row["national_code"]:
            raise ValueError(f"disease_maps.csv: {row['national_code']!r} is not normalised")
        maps.setdefault((row["country"].upper(), row["system"]), {})[key] = row["code"]
    return version, maps


def maps_version() -> str:
    """Version of disease_maps.csv; kept equal to ``registry_version()``."""
    return _maps()[0]


def national_map(country: str, system: str) -> dict[str, str]:
    """National code -> regional code for ``country`` (ISO3) and code ``system``.

    Rows for ``*`` (international systems such as ``icd10``) are included for every
    country; a country's own row wins over a ``*`` row with the same national code.
    """
    maps = _maps()[1]
    merged = dict(maps.get((ANY_COUNTRY, system), {}))
    merged.update(maps.get((country.upper(), system), {}))
    return merged


def translate(country: str, system: str, national_code: str) -> str | None:
    """Regional code for one national value, after normalising case, spaces and accents."""
    return national_map(country, system).get(normalise_national_code(national_code))
