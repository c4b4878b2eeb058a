"""Release parts the hub accepts: a counts table in the release format and its receipt."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from epibridge.model.agreement import Agreement
from epibridge.model.schema import RELEASE_COUNTS


def week_cell(area: str, start: date, cases: int | None, **extra: Any) -> dict[str, Any]:
    """One KHM dengue cell of the ISO week starting ``start`` in the release format (no
    sex, no age band; ``cases`` None: withheld); ``extra`` sets or adds fields."""
    year, week, _ = start.isocalendar()
    return {
        "country": "KHM",
        "area": area,
        "area_level": 1,
        "disease": "DENGUE",
        "period": f"{year}-W{week:02d}",
        "period_type": "week",
        "calendar": "iso",
        "period_start": start,
        "period_end": start + timedelta(days=6),
        "sex": None,
        "age_band": None,
        "cases": cases,
        "cases_suppressed": cases is None,
        "deaths": None,
        "deaths_suppressed": None,
        **extra,
    }


def counts_table(
    rows: int, seed: int = 1, country: str = "KHM", cases: int | None = None
) -> pa.Table:
    """``rows`` weekly cells of distinct random areas (so that the file does not compress)."""
    rng = random.Random(seed)
    start = date(2026, 1, 5)
    return pa.Table.from_pylist(
        [
            week_cell(
                f"{country[:2]}-{rng.getrandbits(64):016x}",
                start,
                rng.randrange(0, 500) if cases is None else cases,
                country=country,
            )
            for _ in range(rows)
        ],
        schema=RELEASE_COUNTS,
    )


def release_parts(
    folder: Path, agreement: Agreement, rows: int = 50, seed: int = 1, table: pa.Table | None = None
) -> list[tuple[str, Path]]:
    """``counts.parquet`` and ``receipt.json`` under ``folder``, as a release has them."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = folder / "counts.parquet"
    pq.write_table(table if table is not None else counts_table(rows, seed), counts)
    receipt = folder / "receipt.json"
    receipt.write_text(
        json.dumps(
            {
                "release_id": f"release-{seed}",
                "agreement": {"id": agreement.id, "sha256": agreement.sha256},
                "sender": agreement.sender,
            }
        )
    )
    return [("counts.parquet", counts), ("receipt.json", receipt)]


def as_of_cell(
    area: str,
    cases: int | None,
    *,
    week: int = 0,
    country: str = "KHM",
    sex: str | None = None,
    age_band: str | None = None,
) -> dict[str, Any]:
    """One cell of the regional picture (``regional.COUNTS_AS_OF``), week ``week`` after
    2026-01-05; ``cases`` None is a withheld cell."""
    begin = date(2026, 1, 5) + timedelta(weeks=week)
    return {
        "source_row": 0,
        "country": country,
        "area": area,
        "area_level": 1,
        "disease": "DENGUE",
        "period": f"2026-W{week + 2:02d}",
        "period_type": "week",
        "calendar": "iso",
        "period_start": begin,
        "period_end": begin + timedelta(days=6),
        "sex": sex,
        "age_band": age_band,
        "cases": cases,
        "cases_suppressed": cases is None,
        "deaths": None,
        "deaths_suppressed": None,
        "submission_id": "s",
        "agreement_id": "a",
        "received_at": datetime(2026, 1, 7, 8, 0, tzinfo=UTC),
    }


def release_cell(
    area: str,
    start: date,
    cases: int | None,
    deaths: int | None = None,
    *,
    country: str = "KHM",
    sex: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """One weekly cell of a released counts table (``RELEASE_COUNTS``): the ISO week that
    starts on ``start`` (or the label ``period``); ``cases`` None is a withheld cell,
    ``deaths`` None a cell without deaths."""
    year, week, _ = start.isocalendar()
    return {
        "country": country,
        "area": area,
        "area_level": 1,
        "disease": "DENGUE",
        "period": period or f"{year}-W{week:02d}",
        "period_type": "week",
        "calendar": "iso",
        "period_start": start,
        "period_end": start + timedelta(days=6),
        "sex": sex,
        "age_band": None,
        "cases": cases,
        "cases_suppressed": cases is None,
        "deaths": deaths,
        "deaths_suppressed": None if deaths is None else False,
    }
