"""As-of queries and scorecards at regional scale, beside plain indexed SELECTs of the
same rows: 10 years x 5,000 areas x 10 diseases of weekly counts (issue 5, item 7).

Builds a hub database (SQLite by default, or PostgreSQL with ``--database URL``, in a
fresh database dropped afterwards) holding, for 4 countries, one submission per country
and week received three days after the week, each carrying that week's count cells of
every area and disease (10 years x 5,000 areas x 10 diseases: 26 million cells), the
week's reporting of every area (a zero-report form for all diseases: 2.6 million rows)
and, in the first week of each year, the population of every area (50,000 figures). Every
tenth week a country sends a revision of its submission of the week before, so the
as-of queries have corrections to resolve. The rows go straight into the regional tables
with their submission rows (what intake writes, without sealing 20,800 files).

Each query runs in this process against the same database, timed as the median of
``--repeat`` runs after one untimed run (the database's caches warm), beside its
baseline: a plain SELECT of the same rows through the same index, without the as-of
ranking (which submission is live, which of several sent cells is the latest):

* a country's year of one disease (``counts_as_of``), now and as of a year ago;
* one week of the region, every disease (the map of a week), now;
* a country's year of reporting (``reporting_as_of``) and its populations
  (``denominators_as_of``);
* the scorecards, computed from nothing (``quality`` without its cache), beside a plain
  ``GROUP BY`` of every cell by country, disease and period.

    uv run python -m benchmarks.bench_hub_queries                        # SQLite; updates the docs
    uv run python -m benchmarks.bench_hub_queries --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    uv run python -m benchmarks.bench_hub_queries --areas 200 --years 1 --diseases 2 --no-docs
    uv run python -m benchmarks.bench_hub_queries --reuse --spark 'local[2]'   # and on Spark
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_dashboard import _database, _drop, _weeks
from benchmarks.common import DOCS, OUT, machine, update_docs

MARKERS = ("<!-- hub-queries:start -->", "<!-- hub-queries:end -->")
SECTION = "## Hub as-of queries and scorecards at regional scale"
COUNTRIES = ("KHM", "LAO", "THA", "VNM")
DISEASES = (
    "DENGUE",
    "MALARIA",
    "CHOLERA",
    "MEASLES",
    "INFLUENZA",
    "TYPHOID",
    "CHIKUNGUNYA",
    "ZIKA",
    "HFMD",
    "RABIES",
)
REVISION_EVERY = 10  # weeks


def _rows(
    sid: str, country: str, codes: list[str], diseases: tuple[str, ...], start: date
) -> dict[str, Any]:
    """One submission's count cells: every area x disease of the week starting ``start``."""
    import pyarrow as pa

    end = start + timedelta(days=6)
    year, week, _ = start.isocalendar()
    n = len(codes) * len(diseases)
    rng = random.Random(f"{sid}")
    cases = [int(rng.expovariate(0.1)) for _ in range(n)]
    withheld = [0 < c < 5 for c in cases]
    return {
        "submission_id": pa.array([sid] * n, pa.string()),
        "source_row": pa.array(range(n), pa.int32()),
        "country": pa.array([country] * n, pa.string()),
        "area": pa.array([a for _ in diseases for a in codes], pa.string()),
        "area_level": pa.array([3] * n, pa.int8()),
        "disease": pa.array([d for d in diseases for _ in codes], pa.string()),
        "period": pa.array([f"{year}-W{week:02d}"] * n, pa.string()),
        "period_type": pa.array(["week"] * n, pa.string()),
        "calendar": pa.array(["iso"] * n, pa.string()),
        "period_start": pa.array([start] * n, pa.date32()),
        "period_end": pa.array([end] * n, pa.date32()),
        "sex": pa.nulls(n, pa.string()),
        "age_band": pa.nulls(n, pa.string()),
        "cases": pa.array([None if w else c for c, w in zip(cases, withheld, strict=True)]),
        "cases_suppressed": pa.array(withheld, pa.bool_()),
        "deaths": pa.nulls(n, pa.int64()),
        "deaths_suppressed": pa.nulls(n, pa.bool_()),
    }


def _reporting(sid: str, country: str, codes: list[str], start: date) -> dict[str, Any]:
    import pyarrow as pa

    end = start + timedelta(days=6)
    year, week, _ = start.isocalendar()
    n = len(codes)
    rng = random.Random(f"r{sid}")
    expected = [rng.randint(1, 6) for _ in codes]
    received = [max(0, e - rng.choice((0, 0, 0, 1, 2))) for e in expected]
    return {
        "submission_id": pa.array([sid] * n, pa.string()),
        "source_row": pa.array(range(n), pa.int32()),
        "country": pa.array([country] * n, pa.string()),
        "area": pa.array(codes, pa.string()),
        "area_level": pa.array([3] * n, pa.int8()),
        "disease": pa.nulls(n, pa.string()),
        "period": pa.array([f"{year}-W{week:02d}"] * n, pa.string()),
        "period_type": pa.array(["week"] * n, pa.string()),
        "calendar": pa.array(["iso"] * n, pa.string()),
        "period_start": pa.array([start] * n, pa.date32()),
        "period_end": pa.array([end] * n, pa.date32()),
        "reports_expected": pa.array(expected, pa.int64()),
        "reports_received": pa.array(received, pa.int64()),
        "reports_on_time": pa.array(received, pa.int64()),
    }


def _population(sid: str, country: str, codes: list[str], year: int) -> dict[str, Any]:
    import pyarrow as pa

    n = len(codes)
    rng = random.Random(f"p{country}")
    return {
        "submission_id": pa.array([sid] * n, pa.string()),
        "source_row": pa.array(range(n), pa.int32()),
        "country": pa.array([country] * n, pa.string()),
        "area": pa.array(codes, pa.string()),
        "area_level": pa.array([3] * n, pa.int8()),
        "year": pa.array([year] * n, pa.int16()),
        "age_band": pa.nulls(n, pa.string()),
        "sex": pa.nulls(n, pa.string()),
        "population": pa.array([rng.randint(5_000, 400_000) for _ in codes], pa.int64()),
        "source": pa.array(["bench estimate"] * n, pa.string()),
    }


def build(url: str, areas: int, years: int, diseases: int, today: date) -> dict[str, Any]:
    """Fill the hub database at ``url``; how many rows of each kind went in."""
    import pyarrow as pa
    from sqlalchemy import insert

    from epibridge.hub.regional import _bulk_insert
    from epibridge.hub.store import HubStore
    from epibridge.hub.tables import (
        regional_counts_table,
        regional_denominators_table,
        regional_reporting_table,
        submissions_table,
    )

    chosen = DISEASES[:diseases]
    per_country = [areas // len(COUNTRIES)] * len(COUNTRIES)
    per_country[0] += areas - sum(per_country)
    codes = {
        c: [f"{c[:2]}-X{i:04d}" for i in range(1, n + 1)]
        for c, n in zip(COUNTRIES, per_country, strict=True)
    }
    rng = random.Random(1)
    weeks = _weeks(years, today)
    facts = {"submissions": 0, "revisions": 0, "cells": 0, "reporting": 0, "populations": 0}
    last: dict[str, str] = {}
    with HubStore.open(url) as store:
        engine = store.engine
        for i, start in enumerate(weeks):
            end = start + timedelta(days=6)
            received = datetime(end.year, end.month, end.day, 9, tzinfo=UTC) + timedelta(days=3)
            with engine.begin() as connection:
                for country in COUNTRIES:
                    revise = i % REVISION_EVERY == REVISION_EVERY - 1 and country in last
                    jobs: list[tuple[date, str | None]] = [(start, None)]
                    if revise:
                        jobs.append((start - timedelta(weeks=1), last[country]))
                    for week, revision_of in jobs:
                        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                        connection.execute(
                            insert(submissions_table).values(
                                submission_id=sid,
                                origin_country=country,
                                agreement_id=f"{country}-HUB-WEEKLY",
                                agreement_sha256="0" * 64,
                                manifest_sha256="0" * 64,
                                manifest=json.dumps({"submission_id": sid}),
                                signer_kid="bench",
                                revision_of=revision_of,
                                period_from=week,
                                period_to=week + timedelta(days=6),
                                received_at=received,
                                stored_path=f"/nowhere/{sid}.zip",
                                size_bytes=0,
                            )
                        )
                        cells = pa.table(_rows(sid, country, codes[country], chosen, week))
                        _bulk_insert(connection, regional_counts_table, cells)
                        reports = pa.table(_reporting(sid, country, codes[country], week))
                        _bulk_insert(connection, regional_reporting_table, reports)
                        facts["submissions"] += 1
                        facts["revisions"] += revision_of is not None
                        facts["cells"] += cells.num_rows
                        facts["reporting"] += reports.num_rows
                        if revision_of is None and (i == 0 or week.year != weeks[i - 1].year):
                            people = pa.table(_population(sid, country, codes[country], week.year))
                            _bulk_insert(connection, regional_denominators_table, people)
                            facts["populations"] += people.num_rows
                        if revision_of is None:
                            last[country] = sid
            if i % 52 == 51:
                print(
                    f"  built {i + 1} of {len(weeks)} weeks ({facts['cells']:,} cells)", flush=True
                )
    facts.update(areas=areas, weeks=len(weeks), diseases=diseases)
    return facts


def _timed(run: Callable[[], int], repeat: int) -> dict[str, float]:
    """Median seconds of ``repeat`` runs after one untimed run; the rows it gave."""
    rows = run()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return {"seconds": statistics.median(times), "rows": rows}


def measure(
    url: str, today: date, repeat: int, spark_master: str | None = None, work: Path = OUT
) -> dict[str, dict[str, dict[str, float]]]:
    """Every query and its baseline, timed on the database at ``url``; with
    ``spark_master``, the scorecards also on Spark (snapshot written under ``work``)."""
    from sqlalchemy import and_, func, select

    from epibridge.hub import quality
    from epibridge.hub.picture_expr import Filters
    from epibridge.hub.quality_cache import StateCache
    from epibridge.hub.regional import counts_as_of
    from epibridge.hub.regional_context import denominators_as_of, reporting_as_of
    from epibridge.hub.store import HubStore, read_only
    from epibridge.hub.tables import (
        regional_counts_table as c,
    )
    from epibridge.hub.tables import (
        regional_denominators_table as d,
    )
    from epibridge.hub.tables import (
        regional_reporting_table as r,
    )

    now = datetime.now(UTC)
    year_ago = now - timedelta(days=365)
    last_week = _weeks(1, today)[-1]
    first = last_week - timedelta(weeks=51)
    results: dict[str, dict[str, dict[str, float]]] = {}
    with HubStore.open(url) as store:
        engine = read_only(store.engine)

        def plain(query: Any) -> Callable[[], int]:
            def run() -> int:
                with engine.connect() as connection:
                    return len(connection.execute(query).fetchall())

            return run

        def year_of(table: Any, countries: list[str], begin: date, stop: date) -> Any:
            return and_(
                table.c.country.in_(countries),
                table.c.period_start >= begin,
                table.c.period_start <= stop,
            )

        counts_cols = [col for col in c.columns if col.name != "row_id"]
        one_year = Filters(["KHM"], ["DENGUE"], first, last_week)
        results["a country's year of one disease, now"] = {
            "as_of": _timed(lambda: counts_as_of(engine, now, one_year).num_rows, repeat),
            "plain": _timed(
                plain(
                    select(*counts_cols).where(
                        c.c.disease == "DENGUE", year_of(c, ["KHM"], first, last_week)
                    )
                ),
                repeat,
            ),
        }
        earlier = (first - timedelta(weeks=52), last_week - timedelta(weeks=52))
        before = Filters(["KHM"], ["DENGUE"], *earlier)
        results["the year before, as of a year ago"] = {
            "as_of": _timed(lambda: counts_as_of(engine, year_ago, before).num_rows, repeat),
            "plain": _timed(
                plain(
                    select(*counts_cols).where(
                        c.c.disease == "DENGUE", year_of(c, ["KHM"], *earlier)
                    )
                ),
                repeat,
            ),
        }
        week = Filters(list(COUNTRIES), list(DISEASES), last_week, last_week)
        results["one week of the region, every disease"] = {
            "as_of": _timed(lambda: counts_as_of(engine, now, week).num_rows, repeat),
            "plain": _timed(
                plain(
                    select(*counts_cols).where(
                        c.c.disease.in_(list(DISEASES)),
                        year_of(c, list(COUNTRIES), last_week, last_week),
                    )
                ),
                repeat,
            ),
        }
        reports = Filters(["KHM"], [], first, last_week)
        results["a country's year of reporting"] = {
            "as_of": _timed(lambda: reporting_as_of(engine, now, reports).num_rows, repeat),
            "plain": _timed(
                plain(
                    select(*[col for col in r.columns if col.name != "row_id"]).where(
                        year_of(r, ["KHM"], first, last_week)
                    )
                ),
                repeat,
            ),
        }
        results["a country's populations"] = {
            "as_of": _timed(
                lambda: denominators_as_of(engine, now, Filters(["KHM"])).num_rows, repeat
            ),
            "plain": _timed(
                plain(
                    select(*[col for col in d.columns if col.name != "row_id"]).where(
                        d.c.country == "KHM"
                    )
                ),
                repeat,
            ),
        }

        def cards() -> int:
            quality._CACHE = StateCache()  # computed from nothing each time
            return sum(s.periods for s in quality.scorecards(engine, now).countries.values())

        grouped = select(
            c.c.country, c.c.disease, c.c.period, func.count(), func.sum(c.c.cases)
        ).group_by(c.c.country, c.c.disease, c.c.period)
        results["scorecards (every cell)"] = {
            "as_of": _timed(cards, max(1, repeat // 3)),
            "plain": _timed(plain(grouped), max(1, repeat // 3)),
        }
        if spark_master is not None:
            results[f"scorecards on Spark {spark_master} (snapshot and sums)"] = {
                "as_of": _spark_cards(engine, now, spark_master, work / "spark-snapshot"),
                "plain": results["scorecards (every cell)"]["plain"],
            }
    return results


def _spark_cards(engine: Any, now: datetime, master: str, snapshot: Path) -> dict[str, float]:
    """The scorecards from nothing on Spark: the hub's cells copied to a Parquet snapshot
    and summed there (``hub scorecards --engine spark``), one run after an untimed one."""
    from epibridge.engines import spark_session
    from epibridge.hub import quality
    from epibridge.hub.picture_expr import SparkSource, export_tables
    from epibridge.hub.quality_cache import StateCache

    with spark_session(master) as spark:

        def run() -> int:
            export_tables(engine, snapshot)
            quality._CACHE = StateCache()
            cells = SparkSource(spark, snapshot)
            cards = quality.scorecards(engine, now, cells=cells)
            return sum(s.periods for s in cards.countries.values())

        return _timed(run, 1)


def report(facts: dict[str, Any], results: dict[str, Any], kind: str, repeat: int) -> str:
    lines = [
        f"{facts['areas']:,} areas x {facts['weeks']} weeks x {facts['diseases']} diseases in "
        f"{len(COUNTRIES)} countries on {kind}: {facts['cells']:,} count cells, "
        f"{facts['reporting']:,} reporting rows, {facts['populations']:,} population figures, "
        f"{facts['submissions']:,} submissions of which {facts['revisions']:,} revisions "
        f"(built in {facts['build_seconds']:,.0f} s). Median of {repeat} runs after one "
        "untimed run (scorecards: of "
        f"{max(1, repeat // 3)}), in this process; baseline: a plain SELECT of the same rows "
        "through the same index, without the as-of ranking.",
        "",
        "| query | rows | as-of s | plain SELECT s | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, got in results.items():
        a, p = got["as_of"], got["plain"]
        ratio = a["seconds"] / p["seconds"] if p["seconds"] else float("nan")
        lines.append(
            f"| {name} | {a['rows']:,} | {a['seconds']:.3f} | {p['seconds']:.3f} | {ratio:.1f} |"
        )
    lines += [
        "",
        "Rows: what the as-of query returned (scorecards: the country-disease-period rows "
        "scored); the plain SELECT returns every row sent, revised or not.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--areas", type=int, default=5000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--diseases", type=int, default=len(DISEASES))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--work", type=Path, default=OUT / "hub-queries")
    parser.add_argument("--reuse", action="store_true", help="time the SQLite hub built last time")
    parser.add_argument("--build-only", action="store_true", help="build the hub, time nothing")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--spark", default=None, metavar="MASTER", help="also the scorecards on Spark (local[2])"
    )
    args = parser.parse_args(argv)
    work: Path = args.work
    today = date.today()
    facts_file = work / "facts.json"
    database, dropped = None, None
    try:
        if args.reuse and args.database is None and facts_file.exists():
            facts = json.loads(facts_file.read_text(encoding="utf-8"))
            url = f"sqlite:///{work / 'hub.sqlite'}"
        else:
            if args.database is None:
                import shutil

                shutil.rmtree(work, ignore_errors=True)
                work.mkdir(parents=True)
                url = f"sqlite:///{work / 'hub.sqlite'}"
            else:
                database, dropped = _database(args.database)
                assert database is not None
                url = database
            began = time.perf_counter()
            facts = build(url, args.areas, args.years, args.diseases, today)
            facts["build_seconds"] = time.perf_counter() - began
            if args.database is None:
                facts_file.write_text(json.dumps(facts), encoding="utf-8")
        print(
            f"hub: {facts['cells']:,} cells (built in {facts['build_seconds']:.0f} s)", flush=True
        )
        if args.build_only:
            return {"facts": facts}
        results = measure(url, today, args.repeat, args.spark, work)
    finally:
        _drop(args.database, dropped)
    text = report(facts, results, "PostgreSQL" if args.database else "SQLite", args.repeat)
    print(text)
    if not args.no_docs:
        kind = "postgresql" if args.database else "sqlite"
        markers = (
            MARKERS[0].replace("start", f"{kind}:start"),
            MARKERS[1].replace("end", f"{kind}:end"),
        )
        update_docs(text, machine(), DOCS, markers, SECTION)
    return {"facts": facts, "results": results}


if __name__ == "__main__":
    main()
