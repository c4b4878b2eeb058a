"""The hub store, run twice: on a SQLite file and on PostgreSQL (a fresh schema per test).

PostgreSQL is always there in CI, so its absence is a failure, not a skip. Its sessions
run in a far-from-UTC time zone (Pacific/Auckland) so that a time read back in the
session's zone instead of UTC would show up.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from epibridge.hub.migrate import current_revision, upgrade
from epibridge.hub.store import (
    HubStore,
    HubStoreError,
    StoredSubmission,
    SubmissionConflict,
    hub_engine,
    read_only,
)
from epibridge.hub.tables import metadata
from epibridge.model.errors import EpibridgeError

POSTGRES = os.environ.get(
    "EPIBRIDGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HEAD = "0009"
AT = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)
THREADS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty hub database: a new SQLite file, or a new PostgreSQL schema dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        options = f"-csearch_path={schema} -cTimeZone=Pacific/Auckland"
        yield (
            make_url(POSTGRES)
            .update_query_dict({"options": options})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def store(url: str) -> Iterator[HubStore]:
    with HubStore.open(url) as opened:
        yield opened


def submission(
    sid: str = "BR-2026-0001", manifest: str = '{"v":1}', **changes: object
) -> StoredSubmission:
    base = StoredSubmission(
        submission_id=sid,
        origin_country="BR",
        agreement_id="paho-dengue-2026",
        agreement_sha256="a" * 64,
        manifest_sha256=_hash(manifest),
        manifest=manifest,
        signer_kid="br-node-2026",
        received_at=AT,
        stored_path=f"/srv/hub/sealed/{sid}.zip",
        size_bytes=4_096,
        period_from=date(2026, 1, 1),
        period_to=date(2026, 10, 31),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _hash(manifest: str) -> str:
    return hashlib.sha256(manifest.encode()).hexdigest()


def test_migrate_from_empty_creates_the_schema_the_code_expects(url: str) -> None:
    upgrade(url)
    engine = HubStore(url).engine
    try:
        assert current_revision(engine) == HEAD
        tables = set(inspect(engine).get_table_names())
        assert {"submissions", "rejections", "alembic_version"} <= tables
        with engine.connect() as connection:
            # The Core tables in store.py and the migrated schema agree, column by column.
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        engine.dispose()


def test_store_without_migration_has_no_revision(url: str) -> None:
    with HubStore(url) as store:
        assert current_revision(store.engine) is None


def test_running_migrations_twice_is_a_no_op(url: str) -> None:
    with HubStore.open(url) as store:
        store.accept(submission())
    upgrade(url)
    with HubStore.open(url) as store:
        assert current_revision(store.engine) == HEAD
        assert store.submissions() == [submission()]


def test_concurrent_first_opens_all_succeed(url: str) -> None:
    errors = _run_threads(4, lambda _: HubStore.open(url).close())
    assert errors == [None] * 4
    with HubStore(url) as store:
        assert current_revision(store.engine) == HEAD


def test_unknown_revision_is_a_clear_error(url: str) -> None:
    upgrade(url)
    with HubStore(url) as store, store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(HubStoreError, match="upgrade epibridge"):
        HubStore.open(url)


def test_accept_new_submission(store: HubStore) -> None:
    s = submission()
    assert store.accept(s) == (s, True)
    assert store.get(s.submission_id) == s
    assert store.get("BR-2026-9999") is None


def test_same_content_again_is_idempotent(store: HubStore) -> None:
    first = submission()
    store.accept(first)
    again = replace(first, received_at=AT + timedelta(hours=2), stored_path="/srv/other.zip")
    held, inserted = store.accept(again)
    assert (held, inserted) == (first, False)
    assert store.submissions() == [first]


def test_different_content_under_the_same_id_conflicts(store: HubStore) -> None:
    first = submission()
    store.accept(first)
    other = submission(manifest='{"v":2}')
    with pytest.raises(SubmissionConflict) as caught:
        store.accept(other)
    assert isinstance(caught.value, EpibridgeError)
    assert caught.value.reason == "submission_id_conflict"
    assert first.manifest_sha256 in str(caught.value)
    assert other.manifest_sha256 in str(caught.value)
    assert store.submissions() == [first]


def test_a_row_the_schema_refuses_is_not_taken_for_a_duplicate(store: HubStore) -> None:
    store.accept(submission())
    with pytest.raises(IntegrityError):
        store.accept(submission("BR-2026-0002", size_bytes=-1))
    with pytest.raises(IntegrityError):
        store.accept(
            submission("BR-2026-0003", period_from=date(2026, 2, 1), period_to=date(2026, 1, 1))
        )
    assert [s.submission_id for s in store.submissions()] == ["BR-2026-0001"]


def _run_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` on ``count`` threads released together; each slot holds the result
    or the exception raised."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _accept_on_own_connection(url: str, s: StoredSubmission) -> tuple[StoredSubmission, bool]:
    with HubStore(url) as own:
        return own.accept(s)


def test_concurrent_accepts_of_the_same_submission_keep_one_row(store: HubStore, url: str) -> None:
    offers = [
        submission(received_at=AT + timedelta(seconds=i), stored_path=f"/srv/{i}.zip")
        for i in range(THREADS)
    ]
    results = _run_threads(THREADS, lambda i: _accept_on_own_connection(url, offers[i]))
    assert all(isinstance(r, tuple) for r in results), results
    rows = store.submissions()
    assert len(rows) == 1
    assert [r for r in results if isinstance(r, tuple) and r[1]] == [(rows[0], True)]
    assert all(r == (rows[0], True) or r == (rows[0], False) for r in results)
    assert rows[0] in offers


def test_concurrent_accepts_with_different_content_conflict_but_keep_one_row(
    store: HubStore, url: str
) -> None:
    offers = [submission(manifest=f'{{"v":{i % 2}}}') for i in range(THREADS)]
    results = _run_threads(THREADS, lambda i: _accept_on_own_connection(url, offers[i]))
    rows = store.submissions()
    assert len(rows) == 1
    kept = rows[0]
    for offer, result in zip(offers, results, strict=True):
        if offer.manifest_sha256 == kept.manifest_sha256:
            assert result in ((kept, True), (kept, False))
        else:
            assert isinstance(result, SubmissionConflict), result
            assert result.stored_sha256 == kept.manifest_sha256
    assert sum(1 for r in results if isinstance(r, tuple) and r[1]) == 1


def test_rejections_are_logged_in_order(store: HubStore) -> None:
    manila = timezone(timedelta(hours=8))
    store.reject(
        reason="bad_signature",
        message="the manifest signature does not verify",
        at=datetime(2026, 11, 23, 18, 0, tzinfo=manila),
        submission_id="PH-2026-0007",
        origin_country="PH",
    )
    store.reject(reason="not_a_submission", message="not a zip file", at=AT)
    logged = store.rejections()
    assert [(r.reason, r.submission_id, r.origin_country) for r in logged] == [
        ("bad_signature", "PH-2026-0007", "PH"),
        ("not_a_submission", None, None),
    ]
    assert logged[0].id < logged[1].id
    assert logged[0].message == "the manifest signature does not verify"
    assert logged[0].received_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert logged[0].received_at.tzinfo == UTC
    assert logged[1].received_at == AT
    assert store.submissions() == []
    with pytest.raises(ValueError, match="machine code"):
        store.reject(reason="Bad Signature!", message="x", at=AT)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.reject(reason="late", message="x", at=datetime(2026, 11, 23, 9, 0))


def test_times_go_in_aware_and_come_out_aware_in_utc(store: HubStore) -> None:
    lima = timezone(timedelta(hours=-5))
    local = datetime(2026, 12, 31, 22, 15, 0, 654321, tzinfo=lima)
    held, _ = store.accept(submission(received_at=local))
    read = store.get(held.submission_id)
    assert read is not None
    assert read.received_at == datetime(2027, 1, 1, 3, 15, 0, 654321, tzinfo=UTC)
    assert read.received_at.tzinfo == UTC
    assert held.received_at.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        submission(received_at=datetime(2026, 11, 23, 9, 0))


def test_dates_round_trip(store: HubStore) -> None:
    weekly = submission("BR-2026-0002", period_from=date(2025, 12, 29), period_to=date(2026, 1, 4))
    open_ended = submission("BR-2026-0003", period_from=None, period_to=None)
    store.accept(weekly)
    store.accept(open_ended)
    assert store.get("BR-2026-0002") == weekly
    got = store.get("BR-2026-0003")
    assert got is not None
    assert (got.period_from, got.period_to) == (None, None)
    assert type(store.submissions()[0].period_from) is date


def test_submissions_by_country_oldest_first(store: HubStore) -> None:
    later = submission("BR-2026-0002", received_at=AT + timedelta(days=1))
    earlier = submission("BR-2026-0001")
    peru = submission("PE-2026-0001", origin_country="PE", revision_of="PE-2025-0009")
    for s in (later, peru, earlier):
        store.accept(s)
    assert store.submissions("BR") == [earlier, later]
    assert store.submissions("PE") == [peru]
    assert store.submissions("LK") == []
    assert [s.submission_id for s in store.submissions()] == [
        "BR-2026-0001",
        "PE-2026-0001",
        "BR-2026-0002",
    ]


def test_a_read_only_transaction_is_one_snapshot(url: str) -> None:
    """A Spark snapshot or a scorecard reads several tables in one read-only transaction:
    all of them as of one moment, also on PostgreSQL (whose default, READ COMMITTED, gives
    every statement its own snapshot, so a submission committed between two statements
    would show its cells without its submission row)."""
    engine = hub_engine(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (x INTEGER)"))
        c.execute(text("INSERT INTO t VALUES (1)"))
    with read_only(engine).connect() as reading:
        assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        with engine.begin() as writing:
            writing.execute(text("INSERT INTO t VALUES (2)"))
        assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    engine.dispose()


def test_a_long_read_does_not_hold_the_write_lock(tmp_path: Path) -> None:
    """Scoring every cell reads for tens of seconds: on a read-only engine it is a
    deferred snapshot, so another connection writes at once instead of waiting behind
    it (the default transaction is BEGIN IMMEDIATE, which would)."""
    engine = hub_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (x INTEGER)"))
        c.execute(text("INSERT INTO t VALUES (1)"))
    other = create_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}", connect_args={"timeout": 0.5})
    with read_only(engine).connect() as reading:
        assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 1  # in a read
        with other.begin() as writing:  # would fail with 'database is locked' after 0.5 s
            writing.execute(text("INSERT INTO t VALUES (2)"))
        # the read's snapshot does not see the write made during it
        assert reading.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    engine.dispose()
    other.dispose()
