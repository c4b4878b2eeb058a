"""Reporting and denominators at the hub: kept with lineage, read as of any moment,
covered by the transparency log, refused whole when malformed."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from epibridge.cli import app
from epibridge.hub.audit import audit_verify
from epibridge.hub.intake import IntakeRefused
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import lineage
from epibridge.hub.regional_context import denominators_as_of, reporting_as_of
from epibridge.model.schema import RELEASE_DENOMINATORS, RELEASE_REPORTING
from tests.hub import test_intake
from tests.hub.payloads import counts_table, release_parts
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, B, C, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

WEEK = date(2026, 1, 5)


def reporting_row(
    area: str, received: int, *, expected: int = 4, disease: str | None = "DENGUE", week: int = 0
) -> dict[str, Any]:
    start = WEEK + timedelta(weeks=week)
    year, number, _ = start.isocalendar()
    return {
        "country": "KHM",
        "area": area,
        "area_level": 1,
        "disease": disease,
        "period": f"{year}-W{number:02d}",
        "period_type": "week",
        "calendar": "iso",
        "period_start": start,
        "period_end": start + timedelta(days=6),
        "reports_expected": expected,
        "reports_received": received,
        "reports_on_time": received,
    }


def population_row(area: str, population: int, year: int = 2026) -> dict[str, Any]:
    return {
        "country": "KHM",
        "area": area,
        "area_level": 1,
        "year": year,
        "age_band": None,
        "sex": None,
        "population": population,
        "source": "NIS Cambodia projection",
    }


def parts_with(
    folder: Path,
    hub: Hub,
    reporting: list[dict[str, Any]] | None = None,
    denominators: list[dict[str, Any]] | None = None,
    seed: int = 1,
) -> list[tuple[str, Path]]:
    parts = release_parts(folder, hub.agreement, table=counts_table(3, seed=seed, cases=5))
    if reporting is not None:
        path = folder / "reporting.parquet"
        pq.write_table(pa.Table.from_pylist(reporting, schema=RELEASE_REPORTING), path)
        parts.append(("reporting.parquet", path))
    if denominators is not None:
        path = folder / "denominators.parquet"
        pq.write_table(pa.Table.from_pylist(denominators, schema=RELEASE_DENOMINATORS), path)
        parts.append(("denominators.parquet", path))
    return parts


def _send_parts(
    hub: Hub, tmp: Path, sid: str, at: float, parts: list[tuple[str, Path]], **kw: Any
) -> None:
    _send(hub, tmp, sid, counts_table(1), at_hours=at, parts=parts, **kw)


def _received(hub: Hub, at_hours: float) -> dict[tuple[str, str | None], tuple[int, str]]:
    t = reporting_as_of(hub.context.store.engine, NOW + timedelta(hours=at_hours))
    return {
        (r["area"], r["disease"]): (r["reports_received"], r["submission_id"])
        for r in t.to_pylist()
    }


def test_reporting_and_denominators_are_kept_as_of_with_lineage(hub: Hub, tmp_path: Path) -> None:
    first = parts_with(
        tmp_path / "a",
        hub,
        reporting=[reporting_row("KH-12", 4), reporting_row("KH-1", 2, disease=None)],
        denominators=[population_row("KH-12", 2_300_000), population_row("KH-1", 880_000)],
    )
    _send_parts(hub, tmp_path, A, 0, first)
    # B re-reports KH-12's week (three reports now); C corrects A: KH-1 is dropped
    later = parts_with(tmp_path / "b", hub, reporting=[reporting_row("KH-12", 3)], seed=2)
    _send_parts(hub, tmp_path, B, 1, later)
    fix = parts_with(
        tmp_path / "c",
        hub,
        reporting=[reporting_row("KH-12", 4)],
        denominators=[population_row("KH-12", 2_310_000)],
        seed=3,
    )
    _send_parts(hub, tmp_path, C, 3, fix, revision_of=A)

    assert _received(hub, -1) == {}
    assert _received(hub, 0.5) == {("KH-12", "DENGUE"): (4, A), ("KH-1", None): (2, A)}
    assert _received(hub, 2) == {("KH-12", "DENGUE"): (3, B), ("KH-1", None): (2, A)}
    # C was received last: its KH-12 wins; A's KH-1 went with A
    assert _received(hub, 4) == {("KH-12", "DENGUE"): (4, C)}

    engine = hub.context.store.engine
    people = denominators_as_of(engine, NOW + timedelta(hours=0.5))
    assert {r["area"]: r["population"] for r in people.to_pylist()} == {
        "KH-12": 2_300_000,
        "KH-1": 880_000,
    }
    now = denominators_as_of(engine, NOW + timedelta(hours=4)).to_pylist()
    assert [(r["area"], r["population"], r["submission_id"]) for r in now] == [
        ("KH-12", 2_310_000, C)
    ]
    assert now[0]["agreement_id"] == hub.agreement.id and now[0]["source_row"] == 0
    # a disease filter keeps the reports that cover every disease
    kept = reporting_as_of(engine, NOW + timedelta(hours=0.5), Filters(diseases=["MALARIA"]))
    assert kept.column("disease").to_pylist() == [None]
    assert reporting_as_of(engine, NOW, Filters(countries=["LAO"])).num_rows == 0

    traced = lineage(engine, A, NOW + timedelta(hours=4))
    assert traced is not None
    assert (traced.reporting_rows, traced.denominators_rows) == (2, 2)

    report = audit_verify(engine, hub.context.trust, progress=lambda step: None)
    assert report.problems == []


TAMPERING = {
    "a report": "UPDATE regional_reporting SET reports_received = 0 WHERE submission_id = '{A}'",
    "a population": "UPDATE regional_denominators SET population = 1 WHERE submission_id = '{A}'",
    "a deleted report": "DELETE FROM regional_reporting WHERE submission_id = '{A}'",
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_editing_reporting_or_denominators_is_found(hub: Hub, tmp_path: Path, what: str) -> None:
    parts = parts_with(
        tmp_path / "a",
        hub,
        reporting=[reporting_row("KH-12", 4)],
        denominators=[population_row("KH-12", 2_300_000)],
    )
    _send_parts(hub, tmp_path, A, 0, parts)
    engine = hub.context.store.engine
    assert audit_verify(engine, hub.context.trust, progress=lambda step: None).problems == []
    with engine.begin() as c:
        c.execute(text(TAMPERING[what].format(A=A)))
    report = audit_verify(engine, hub.context.trust, progress=lambda step: None)
    assert report.problems, f"editing {what} went unnoticed"


def test_a_submission_without_them_keeps_the_old_leaf(hub: Hub, tmp_path: Path) -> None:
    _send(hub, tmp_path, A, counts_table(2), at_hours=0)
    with hub.context.store.engine.connect() as c:
        entry = json.loads(
            c.execute(text("SELECT entry FROM log_entries WHERE seq = 1")).scalar_one()
        )
    assert "counts_rows" in entry and "reporting_rows" not in entry


def test_malformed_reporting_is_refused_whole(hub: Hub, tmp_path: Path) -> None:
    parts = parts_with(tmp_path / "a", hub, reporting=[reporting_row("KH-12", 4)])
    bad = pa.Table.from_pylist([reporting_row("KH-12", 4)], schema=RELEASE_REPORTING)
    pq.write_table(bad.drop(["reports_expected"]), tmp_path / "a" / "reporting.parquet")
    with pytest.raises(IntakeRefused) as refused:
        _send_parts(hub, tmp_path, A, 0, parts)
    assert refused.value.reason == "bad_payload"
    assert "reporting.parquet has no column 'reports_expected'" in str(refused.value)
    assert hub.context.store.submissions() == []
    assert reporting_as_of(hub.context.store.engine, NOW + timedelta(hours=1)).num_rows == 0


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_reporting_and_denominators_on_the_command_line(hub: Hub, tmp_path: Path, url: str) -> None:
    parts = parts_with(
        tmp_path / "a",
        hub,
        reporting=[reporting_row("KH-12", 3, expected=4), reporting_row("KH-1", 2, disease=None)],
        denominators=[population_row("KH-12", 2_300_000), population_row("KH-1", 880_000)],
    )
    _send_parts(hub, tmp_path, A, 0, parts)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    at = (NOW + timedelta(hours=1)).isoformat()
    runner = CliRunner()
    out = tmp_path / "reporting.csv"
    done = runner.invoke(
        app,
        ["hub", "reporting", "--as-of", at, "--home", str(home), "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert done.exit_code == 0, done.output
    assert "(all diseases)" in done.stdout and "75%" in done.stdout  # KH-12: 3 of 4
    assert out.read_text(encoding="utf-8").count("\n") == 3  # header and two rows
    before = runner.invoke(app, ["hub", "reporting", "--as-of", "2020-01-01", "--home", str(home)])
    assert before.exit_code == 0 and "no reporting held" in before.stdout
    people = runner.invoke(
        app, ["hub", "denominators", "--as-of", at, "--home", str(home)], env={"COLUMNS": "200"}
    )
    assert people.exit_code == 0, people.output
    assert "3,180,000" in people.stdout and "NIS Cambodia projection" in people.stdout
    traced = runner.invoke(app, ["hub", "lineage", A, "--home", str(home)])
    assert "2 reporting rows, 2 population figures" in traced.stdout
