"""Generate a large, realistic national dengue line list (Cambodia-like) as CSV.

One row per notified case: ``case_id, disease, onset, reported, sex, age, province``.
Diseases are ICD-10 dengue codes (A90, A91, A97.x), onsets span 2015-2025 with yearly
epidemics and a rainy-season peak, reports follow onset by a few days, and provinces are
real Cambodian provinces taken from the geography registry (weighted roughly like the
case load: more cases in the populous provinces).

About 0.5% of the rows are planted errors, each of exactly one kind, so that validation
has real work and a test can check that every one of them is quarantined under its rule:

=================  =====================================================================
rule               what is planted
=================  =====================================================================
bad_date           impossible or wrongly written onset/report dates (2023-02-30, 12/03/2021)
future_date        a report date after the benchmark's run day
date_order         an onset after the report date
unknown_code       disease codes that are not dengue codes (A99, DHF, A97.5)
implausible_age    ages of 121-400 years or negative
unknown_area       misspelt province names
duplicate_id       a case id already used by an earlier (good) record
=================  =====================================================================

The file is built with NumPy and written in chunks with ``pyarrow.csv``, so memory stays
small whatever ``--rows`` is. ``--truth FILE`` also writes the planted rows (record number
and rule) for tests. Same ``--seed`` and ``--rows``, same file.

    uv run python -m benchmarks.generate_linelist --rows 10_000_000 --out linelist.csv
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

#: The run day the planted future dates are after (benchmarks ingest with this ``today``).
RUN_DAY = date(2026, 6, 30)
FIRST_DAY = date(2015, 1, 1)
LAST_DAY = date(2025, 12, 31)
#: Share of rows with a planted error (split over the rules below).
BAD_SHARE = 0.005
BAD_KINDS: dict[str, float] = {
    "bad_date": 0.20,
    "future_date": 0.10,
    "date_order": 0.15,
    "unknown_code": 0.15,
    "implausible_age": 0.15,
    "unknown_area": 0.05,
    "duplicate_id": 0.20,
}
DISEASES: dict[str, float] = {
    "A90": 0.38,
    "A91": 0.12,
    "A97.0": 0.24,
    "A97.1": 0.15,
    "A97.2": 0.03,
    "A97.9": 0.08,
}
BAD_CODES = np.array(["A99", "DHF", "A97.5", "A9O", "B50"], dtype=object)
BAD_DATES = np.array(
    ["2023-02-30", "12/03/2021", "2021-13-01", "2019-06-31", "20190704", "2020-00-10"], dtype=object
)
#: Relative size of each year's epidemic (2019 was Cambodia's largest on record).
YEAR_WEIGHTS = {
    2015: 0.6,
    2016: 0.5,
    2017: 0.4,
    2018: 0.9,
    2019: 2.2,
    2020: 0.6,
    2021: 0.4,
    2022: 0.9,
    2023: 1.4,
    2024: 0.7,
    2025: 0.8,
}
COLUMNS = ("case_id", "disease", "onset", "reported", "sex", "age", "province")
CHUNK = 500_000
_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class Places:
    """Province spellings as they appear in the file, with their case weights."""

    names: npt.NDArray[np.object_]
    weights: npt.NDArray[np.float64]
    misspelt: npt.NDArray[np.object_]


def _misspell(name: str) -> str:
    """A spelling the registry will not resolve (letters swapped, a letter added)."""
    letters = name.replace(" ", "")
    if len(letters) < 4:
        return name + "xq"
    return letters[:2] + letters[3] + letters[2] + letters[4:] + "h"


def provinces(country: str = "KHM") -> Places:
    """Level-1 units of ``country`` from the geography registry, with spelling variants."""
    from epibridge.registry import geography

    try:
        level1 = [u for u in geography.units(country) if u.level == 1 and u.valid_to is None]
    except (FileNotFoundError, OSError):
        level1 = []
    if not level1:
        raise SystemExit(
            f"the geography registry has no level-1 units for {country}; "
            "build it first (scripts/build_geography.py)"
        )
    names: list[str] = []
    weights: list[float] = []
    rng = np.random.default_rng(12345)  # fixed: province weights do not depend on --seed
    known = {
        geography.normalise_name(a) for u in level1 for a in (u.name, u.name_local, *u.alt_names)
    }
    for u in sorted(level1, key=lambda u: u.code):
        size = float(rng.lognormal(0.0, 0.6)) * (4.0 if "Phnom Penh" in u.name else 1.0)
        spellings = [u.name]
        # Real exports mix spellings: add an alternative that resolves to the same unit.
        spellings += [
            a for a in u.alt_names if a.isascii() and geography.resolve(country, [a]) == u
        ][:1]
        for i, s in enumerate(spellings):
            found = geography.resolve(country, [s])
            if found is None or found.code != u.code:
                continue
            names.append(s)
            weights.append(size * (0.8 if i == 0 and len(spellings) > 1 else 0.2 if i else 1.0))
    misspelt = sorted(
        {
            m
            for n in names[:8]
            if geography.normalise_name(m := _misspell(n)) not in known
            and geography.resolve(country, [m]) is None
        }
    )
    w = np.array(weights)
    return Places(np.array(names, dtype=object), w / w.sum(), np.array(misspelt, dtype=object))


def _day_numbers(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    """Onset days (days since 1970) with yearly epidemics and a June-August peak."""
    years = np.array(list(YEAR_WEIGHTS))
    yw = np.array(list(YEAR_WEIGHTS.values()))
    year = rng.choice(years, size=n, p=yw / yw.sum())
    # Rainy-season peak around day 200 (mid-July), plus a year-round background.
    seasonal = rng.normal(200.0, 45.0, size=n)
    background = rng.uniform(0.0, 365.0, size=n)
    doy = np.where(rng.random(n) < 0.75, seasonal, background)
    doy = np.clip(doy, 0, 364).astype(np.int64)
    starts = np.array([f"{y}-01-01" for y in years], dtype="datetime64[D]") - _EPOCH
    start: npt.NDArray[np.int64] = starts.astype(np.int64)[year - years[0]]
    return start + doy


def _dates(days: npt.NDArray[np.int64]) -> pa.Array:
    return pc.cast(pa.array(days.astype(np.int32), pa.date32()), pa.string())


def _choice(rng: np.random.Generator, options: dict[str, float], n: int) -> pa.Array:
    keys = np.array(list(options), dtype=object)
    p = np.array(list(options.values()))
    idx = rng.choice(len(keys), size=n, p=p / p.sum())
    return pa.DictionaryArray.from_arrays(
        pa.array(idx.astype(np.int32)), pa.array(list(keys), pa.string())
    ).cast(pa.string())


def _case_ids(numbers: npt.NDArray[np.int64]) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), 9, "0")
    return pc.binary_join_element_wise("KH-DEN-", digits, "")


def _chunk(
    rng: np.random.Generator, first: int, n: int, places: Places, truth: list[tuple[int, str]]
) -> pa.Table:
    """Rows ``first``..``first + n - 1`` (0-based) of the file."""
    onset = _day_numbers(rng, n)
    delay = np.minimum(rng.geometric(0.35, size=n) - 1, 30)
    report = onset + delay
    ages = np.clip(rng.gamma(2.2, 8.0, size=n), 0, 90)
    ages = np.where(rng.random(n) < 0.05, rng.uniform(0, 1, size=n), ages)  # infants
    age_text = pc.cast(pa.array(np.round(ages).astype(np.int64)), pa.string())
    blank_age = rng.random(n) < 0.03
    age_text = pc.if_else(pa.array(blank_age), pa.scalar(None, pa.string()), age_text)
    sex = _choice(rng, {"M": 0.49, "F": 0.49, "U": 0.02}, n)
    disease = _choice(rng, DISEASES, n)
    pidx = rng.choice(len(places.names), size=n, p=places.weights)
    province = pa.array(places.names[pidx], pa.string())
    ids = first + 1 + np.arange(n, dtype=np.int64)
    onset_t, report_t = _dates(onset), _dates(report)
    arrays: dict[str, pa.Array] = {
        "disease": disease,
        "onset": onset_t,
        "reported": report_t,
        "sex": sex,
        "age": age_text,
        "province": province,
    }
    _plant(rng, first, arrays, ids, report, places=places, truth=truth)
    arrays["case_id"] = _case_ids(ids)
    return pa.table({c: arrays[c] for c in COLUMNS})


def _plant(
    rng: np.random.Generator,
    first: int,
    arrays: dict[str, pa.Array],
    ids: npt.NDArray[np.int64],
    report: npt.NDArray[np.int64],
    *,
    places: Places,
    truth: list[tuple[int, str]],
) -> None:
    """Plant the bad rows in ``arrays`` (and ``ids``) in place; record them in ``truth``."""
    n = len(ids)
    # Planted errors: disjoint rows, one kind each. Rows 0-99 of a chunk stay good so a
    # duplicate always has an earlier good record to copy.
    bad = np.flatnonzero(rng.random(n) < BAD_SHARE)
    bad = bad[bad >= 100]
    kinds = np.array(list(BAD_KINDS))
    kp = np.array(list(BAD_KINDS.values()))
    kind = rng.choice(kinds, size=len(bad), p=kp / kp.sum())
    is_bad = np.zeros(n, dtype=bool)
    is_bad[bad] = True
    columns: dict[str, npt.NDArray[np.object_]] = {}

    def text(name: str) -> npt.NDArray[np.object_]:
        if name not in columns:
            columns[name] = np.asarray(arrays[name].to_numpy(zero_copy_only=False), dtype=object)
        return columns[name]

    for k in kinds:
        rows = bad[kind == k]
        m = len(rows)
        if m == 0:
            continue
        if k == "bad_date":
            on_onset = rng.random(m) < 0.5
            text("onset")[rows[on_onset]] = rng.choice(BAD_DATES, size=m)[on_onset]
            text("reported")[rows[~on_onset]] = rng.choice(BAD_DATES, size=m)[~on_onset]
        elif k == "future_date":
            future = (np.datetime64(RUN_DAY) - _EPOCH).astype(np.int64) + rng.integers(
                30, 900, size=m
            )
            text("reported")[rows] = np.datetime_as_string(
                (future + _EPOCH).astype("datetime64[D]")
            ).astype(object)
        elif k == "date_order":
            later = report[rows] + rng.integers(1, 40, size=m)
            text("onset")[rows] = np.datetime_as_string(
                (later + _EPOCH).astype("datetime64[D]")
            ).astype(object)
        elif k == "unknown_code":
            text("disease")[rows] = rng.choice(BAD_CODES, size=m)
        elif k == "implausible_age":
            wild = np.where(
                rng.random(m) < 0.8, rng.integers(121, 400, size=m), -rng.integers(1, 5, size=m)
            )
            text("age")[rows] = wild.astype(str).astype(object)
        elif k == "unknown_area":
            if len(places.misspelt) == 0:
                is_bad[rows] = False
                continue
            text("province")[rows] = rng.choice(places.misspelt, size=m)
        elif k == "duplicate_id":
            src = rows - rng.integers(1, 100, size=m)
            clash = is_bad[src]
            src[clash] = 0  # row 0 of a chunk is always good
            ids[rows] = ids[src]
        truth.extend((first + int(r) + 1, str(k)) for r in rows if is_bad[r])
    for name, values in columns.items():
        arrays[name] = pa.array(values, pa.string())


def generate(
    rows: int, out: Path, seed: int = 1, truth: Path | None = None, places: Places | None = None
) -> dict[str, int]:
    """Write ``rows`` records to ``out`` (and the planted errors to ``truth``)."""
    places = places or provinces()
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    planted: list[tuple[int, str]] = []
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with out.open("wb") as sink, pacsv.CSVWriter(sink, schema, write_options=options) as writer:
        sink.write((",".join(COLUMNS) + "\n").encode())
        first = 0
        while first < rows:
            n = min(CHUNK, rows - first)
            writer.write_table(_chunk(rng, first, n, places, planted))
            first += n
    if truth is not None:
        pacsv.write_csv(
            pa.table(
                {
                    "record": pa.array([r for r, _ in planted], pa.int64()),
                    "rule": pa.array([k for _, k in planted], pa.string()),
                }
            ),
            truth,
        )
    counts: dict[str, int] = {}
    for _, k in planted:
        counts[k] = counts.get(k, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="also write the planted bad records (record,rule) here",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    planted = generate(args.rows, args.out, args.seed, args.truth)
    took = time.perf_counter() - started
    print(
        f"wrote {args.rows:,} rows to {args.out} in {took:.1f} s "
        f"({args.out.stat().st_size / 1e6:,.0f} MB); planted bad rows: "
        f"{sum(planted.values()):,} {dict(sorted(planted.items()))}"
    )


if __name__ == "__main__":
    main()
