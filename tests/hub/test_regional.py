"""The regional tables: rows kept with their lineage, and what the hub knew at any moment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from joserfc.jwk import OKPKey

from epibridge.hub.intake import receive
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import counts_as_of, lineage
from epibridge.transport.seal import seal
from tests.hub import test_intake
from tests.hub.payloads import counts_table, release_parts
from tests.hub.test_intake import NOW, Hub, _refused

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"


def _send(
    hub: Hub,
    tmp: Path,
    sid: str,
    table: pa.Table,
    at_hours: float,
    revision_of: str | None = None,
    parts: list[tuple[str, Path]] | None = None,
) -> Path:
    key = hub.world.khm_key
    out = tmp / f"{sid}.zip"
    seal(
        out,
        {
            "submission_id": sid,
            "origin_country": "KHM",
            "agreement_id": hub.agreement.id,
            "agreement_sha256": hub.agreement.sha256,
            "period": {"from": "2026-01-05", "to": "2026-01-11"},
            "revision_of": revision_of,
            "created_at": NOW.isoformat(),
        },
        parts or release_parts(tmp / sid, hub.agreement, table=table),
        OKPKey.import_key(key.private_key, {"kid": key.kid}),
        OKPKey.import_key(hub.enc.private_key.public_key(), {"kid": hub.enc.kid}),
    )
    receive(out, hub.context, NOW + timedelta(hours=at_hours))
    return out


def _cells(hub: Hub, at_hours: float) -> dict[str, tuple[int, str]]:
    t = counts_as_of(hub.context.store.engine, NOW + timedelta(hours=at_hours))
    return {
        r["area"]: (r["cases"], r["submission_id"])
        for r in t.select(["area", "cases", "submission_id"]).to_pylist()
    }


def test_as_of_follows_revisions_and_never_rewrites_history(hub: Hub, tmp_path: Path) -> None:
    first = counts_table(5, seed=1, cases=10)
    other = counts_table(5, seed=2, cases=20)
    _send(hub, tmp_path, A, first, at_hours=0)
    _send(hub, tmp_path, B, other, at_hours=1)
    corrected = first.slice(0, 3).set_column(
        first.schema.get_field_index("cases"), "cases", pa.array([11, 12, 13], pa.int64())
    )
    _send(hub, tmp_path, C, corrected, at_hours=3, revision_of=A)

    areas_a = first.column("area").to_pylist()
    assert _cells(hub, -1) == {}
    assert _cells(hub, 0.5) == {area: (10, A) for area in areas_a}
    at_two = _cells(hub, 2)
    assert len(at_two) == 10 and {sid for _, sid in at_two.values()} == {A, B}
    now = _cells(hub, 4)
    assert len(now) == 8  # the revision dropped two of A's cells
    assert [now[a] for a in areas_a[:3]] == [(11, C), (12, C), (13, C)]
    assert all(a not in now for a in areas_a[3:])
    # What was known at 00:30 is still what it was.
    assert _cells(hub, 0.5) == {area: (10, A) for area in areas_a}

    seen = lineage(hub.context.store.engine, A, NOW + timedelta(hours=4))
    assert seen is not None
    assert seen.counts_rows == 5 and seen.counts_rows_current == 0
    assert [sid for sid, _ in seen.replaced_by] == [C]
    assert lineage(hub.context.store.engine, "no-such", NOW) is None


def test_a_later_submission_overrides_the_same_cells(hub: Hub, tmp_path: Path) -> None:
    _send(hub, tmp_path, A, counts_table(4, seed=1, cases=10), at_hours=0)
    _send(hub, tmp_path, B, counts_table(4, seed=1, cases=30), at_hours=1)
    assert {v for v in _cells(hub, 0.5).values()} == {(10, A)}
    assert {v for v in _cells(hub, 2).values()} == {(30, B)}
    only = counts_as_of(
        hub.context.store.engine, NOW + timedelta(hours=2), Filters(countries=["LAO"])
    )
    assert only.num_rows == 0


@pytest.mark.parametrize(
    "problem", ["junk", "no_receipt", "extra_part", "other_agreement", "nulls"]
)
def test_unusable_parts_are_refused_whole(hub: Hub, tmp_path: Path, problem: str) -> None:
    parts = release_parts(tmp_path / "p", hub.agreement, rows=3)
    if problem == "junk":
        parts[0][1].write_bytes(b"PAR1 not really parquet PAR1")
    elif problem == "no_receipt":
        parts = parts[:1]
    elif problem == "extra_part":
        (tmp_path / "notes.txt").write_text("hello")
        parts.append(("notes.txt", tmp_path / "notes.txt"))
    elif problem == "other_agreement":
        parts[1][1].write_text('{"agreement": {"sha256": "00"}}')
    else:
        t = counts_table(3)
        i = t.schema.get_field_index("cases_suppressed")
        schema = t.schema.set(i, t.schema.field(i).with_nullable(True))
        bad = t.cast(schema).set_column(i, "cases_suppressed", pa.array([None] * 3, pa.bool_()))
        pq.write_table(bad, parts[0][1])
    key = hub.world.khm_key
    out = tmp_path / "bad.zip"
    seal(
        out,
        {
            "submission_id": A,
            "origin_country": "KHM",
            "agreement_id": hub.agreement.id,
            "agreement_sha256": hub.agreement.sha256,
            "created_at": NOW.isoformat(),
        },
        parts,
        OKPKey.import_key(key.private_key, {"kid": key.kid}),
        OKPKey.import_key(hub.enc.private_key.public_key(), {"kid": hub.enc.kid}),
    )
    _refused(hub, out, "bad_payload")
    assert counts_as_of(hub.context.store.engine, NOW + timedelta(days=1)).num_rows == 0


def test_incidence_uses_the_registry_population(hub: Hub, tmp_path: Path) -> None:
    from epibridge.hub.regional import incidence
    from epibridge.registry.geography import population

    cells = counts_table(2, seed=3, cases=50)
    area = cells.column("area").to_pylist()
    real = next(r for r in population("KHM") if r.code.startswith("KH-"))
    cells = cells.set_column(
        cells.schema.get_field_index("area"), "area", pa.array([real.code, area[1]], pa.string())
    )
    _send(hub, tmp_path, A, cells, at_hours=0)
    rates = {
        r["area"]: r
        for r in incidence(
            counts_as_of(hub.context.store.engine, NOW + timedelta(hours=1))
        ).to_pylist()
    }
    known = [p for p in population("KHM") if p.code == real.code]
    best = min(known, key=lambda p: (abs(p.year - 2026), -p.year))
    assert rates[real.code]["population"] == best.population
    assert rates[real.code]["incidence_per_100k"] == 50 * 100_000 / best.population
    assert rates[area[1]]["population"] is None and rates[area[1]]["incidence_per_100k"] is None
