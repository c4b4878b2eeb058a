"""Every sealed submission the hub accepted, kept once, and every attempt it refused.

SQLAlchemy Core over SQLite (the default: one file, no server) or PostgreSQL (a real hub
with many writers); see docs/decisions/0009-hub-store.md. The schema belongs to the
Alembic migrations in ``migrations/``: the tables below mirror them for building queries,
and a test checks the two agree.

Idempotency is the database's job, not a check-then-insert here: ``accept`` inserts, and
if the primary key is taken it reads the row that won and compares manifest hashes. Two
intakes racing on one submission id (threads, processes, hub replicas) therefore end with
exactly one row; each caller learns whether its insert was the one kept, or that the id
is already held by a different manifest. Times are passed in, never read from the clock.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from epibridge.hub.tables import rejections_table, submissions_table, utc
from epibridge.model.errors import EpibridgeError

# Seconds a SQLite writer waits for another connection's write transaction.
SQLITE_BUSY_TIMEOUT = 30.0

_REASON = re.compile(r"[a-z][a-z0-9_]*")


class HubStoreError(EpibridgeError):
    """The hub database cannot be used (unknown schema revision, unreachable server)."""


class SubmissionConflict(EpibridgeError):  # noqa: N818 (the name the intake API uses)
    """A submission id the hub already holds arrived with a different signed manifest."""

    reason = "submission_id_conflict"

    def __init__(self, submission_id: str, stored_sha256: str, offered_sha256: str) -> None:
        self.submission_id = submission_id
        self.stored_sha256 = stored_sha256
        self.offered_sha256 = offered_sha256
        super().__init__(
            f"submission {submission_id} is already held by the hub with manifest sha256 "
            f"{stored_sha256}; this one has {offered_sha256}\n"
            "  what to do: a corrected submission needs a new submission id, sent as a "
            f"revision (revision_of = {submission_id}); never reuse an id for other content"
        )


_utc = utc


@dataclass(frozen=True, kw_only=True)
class StoredSubmission:
    """One accepted submission: the manifest's facts the hub queries on, and where the sealed
    file is kept. ``received_at`` is normalized to UTC (a naive time is refused)."""

    submission_id: str
    origin_country: str
    agreement_id: str
    agreement_sha256: str
    manifest_sha256: str  # hex SHA-256 of the signed manifest bytes
    manifest: str  # the manifest as JSON text, verbatim
    signer_kid: str
    received_at: datetime
    stored_path: str
    size_bytes: int
    revision_of: str | None = None
    period_from: date | None = None
    period_to: date | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "received_at", _utc(self.received_at, "received_at"))


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """One refused attempt. ``reason`` is a machine code (``bad_signature``), ``message``
    the text the sender was given."""

    id: int
    reason: str
    message: str
    received_at: datetime
    submission_id: str | None = None
    origin_country: str | None = None


def hub_engine(url: str) -> Engine:
    """An engine for a hub database URL (``sqlite:///path`` or ``postgresql+psycopg://...``).

    On SQLite the driver's own transaction handling is switched off so that every write
    transaction is a ``BEGIN IMMEDIATE`` (writers queue on the lock for up to
    ``SQLITE_BUSY_TIMEOUT`` instead of failing on a read-to-write upgrade), and the file
    runs in WAL mode so readers never wait for a writer.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # Switching a new file to WAL needs an exclusive lock and SQLite answers "database
        # is locked" at once, without the busy timeout, when another connection is opening
        # the same file: retry for as long as a writer would wait.
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
        while True:
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        cursor.close()


_READ_ONLY = "epibridge_read_only"


def read_only(engine: Engine) -> Engine:
    """``engine`` for reading: each transaction is one snapshot of the whole database,
    which neither waits for nor blocks a writer. On SQLite a plain (deferred) ``BEGIN``
    (WAL), where the default ``BEGIN IMMEDIATE`` would hold the write lock for as long
    as the read lasts (scoring millions of cells takes tens of seconds); on PostgreSQL
    ``REPEATABLE READ``, where the default ``READ COMMITTED`` gives every statement its
    own snapshot, so that reading submissions and then their cells could see a
    submission committed in between by half."""
    options: dict[str, Any] = {_READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    return engine.execution_options(**options)


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class HubStore:
    """The hub's intake database. ``HubStore(url)`` connects; ``HubStore.open(url)`` also
    brings the schema up to date first, which is what a hub process should call."""

    def __init__(self, url: str) -> None:
        self._engine = hub_engine(url)

    @classmethod
    def open(cls, url: str) -> HubStore:
        from epibridge.hub.migrate import upgrade_engine

        store = cls(url)
        try:
            upgrade_engine(store._engine)
        except BaseException:
            store.close()
            raise
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    def accept(
        self, s: StoredSubmission, with_rows: Callable[[Connection], object] | None = None
    ) -> tuple[StoredSubmission, bool]:
        """Keep ``s``; return the row now held and whether this call inserted it.

        The same id with the same manifest hash is a retransmission: the row already held
        comes back with False (its received_at and stored_path, not the new ones; the
        caller discards its copy). The same id with another hash raises
        ``SubmissionConflict``. Race-safe through the primary key, not a prior lookup.

        ``with_rows`` runs in the same transaction after the insert (the submission's
        regional rows, its log entry): all of it is kept, or none.
        """
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(submissions_table).values(_submission_values(s)))
                if with_rows is not None:
                    with_rows(connection)
        except IntegrityError:
            held = self.get(s.submission_id)
            if held is None:
                # Not the primary key: a check constraint refused the row itself.
                raise
            if held.manifest_sha256 != s.manifest_sha256:
                raise SubmissionConflict(
                    s.submission_id, held.manifest_sha256, s.manifest_sha256
                ) from None
            return held, False
        return s, True

    def get(self, submission_id: str) -> StoredSubmission | None:
        query = select(submissions_table).where(submissions_table.c.submission_id == submission_id)
        with self._read() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _submission(row)

    def submissions(self, origin_country: str | None = None) -> list[StoredSubmission]:
        """Accepted submissions, oldest first, optionally from one country only."""
        query = select(submissions_table).order_by(
            submissions_table.c.received_at, submissions_table.c.submission_id
        )
        if origin_country is not None:
            query = query.where(submissions_table.c.origin_country == origin_country)
        with self._read() as connection:
            return [_submission(row) for row in connection.execute(query)]

    def reject(
        self,
        *,
        reason: str,
        message: str,
        at: datetime,
        submission_id: str | None = None,
        origin_country: str | None = None,
    ) -> None:
        """Log a refused attempt (append-only: the store never changes or removes one)."""
        if not _REASON.fullmatch(reason):
            raise ValueError(f"reason must be a machine code like 'bad_signature', got {reason!r}")
        values = {
            "reason": reason,
            "message": message,
            "received_at": _utc(at, "at"),
            "submission_id": submission_id,
            "origin_country": origin_country,
        }
        with self._engine.begin() as connection:
            connection.execute(insert(rejections_table).values(values))

    def rejections(self) -> list[Rejection]:
        """Every refused attempt, in the order it was logged."""
        query = select(rejections_table).order_by(rejections_table.c.id)
        with self._read() as connection:
            return [
                Rejection(
                    id=row.id,
                    reason=row.reason,
                    message=row.message,
                    received_at=row.received_at,
                    submission_id=row.submission_id,
                    origin_country=row.origin_country,
                )
                for row in connection.execute(query)
            ]

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> HubStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self) -> Connection:
        connection = self._engine.connect()
        connection.execution_options(**{_READ_ONLY: True})
        return connection


def _submission_values(s: StoredSubmission) -> dict[str, object]:
    return {column.name: getattr(s, column.name) for column in submissions_table.columns}


def _submission(row: Row[Any]) -> StoredSubmission:
    return StoredSubmission(
        **{column.name: row._mapping[column] for column in submissions_table.columns}
    )
