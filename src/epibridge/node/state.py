"""The node's own small state: one SQLite file holding the privacy ledger, the transfer
register and agreement stops.

Stdlib ``sqlite3`` (see docs/decisions/0006-node-state-sqlite.md): a node works offline,
keeps one file it can back up, and needs no server. WAL mode lets a reader (``epibridge
transfers``) run while a release is being written; ``BEGIN IMMEDIATE`` makes a
read-then-write (the budget check) atomic across processes. The ledger, register and stops
are append-only, enforced by triggers in the file itself, so no code path, old or new,
can rewrite history without dropping a trigger first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from epibridge.model.errors import EpibridgeError

SCHEMA_VERSION = 1

# Seconds a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT = 30.0


def _append_only(table: str, what: str) -> str:
    return f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{what} is append-only: rows cannot be changed'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{what} is append-only: rows cannot be deleted'); END;
"""


_SCHEMA = (
    """
CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE privacy_ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agreement_id TEXT NOT NULL,
    agreement_version TEXT NOT NULL,
    budget_period TEXT NOT NULL,
    epsilon REAL NOT NULL CHECK (epsilon > 0),
    budget REAL NOT NULL CHECK (budget > 0),
    release_id TEXT NOT NULL UNIQUE,
    spent_at TEXT NOT NULL
);
CREATE INDEX privacy_ledger_period ON privacy_ledger (agreement_id, budget_period);
CREATE TABLE transfers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    agreement_id TEXT NOT NULL,
    agreement_version TEXT NOT NULL,
    agreement_sha256 TEXT NOT NULL,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    datasets TEXT NOT NULL,
    diseases TEXT NOT NULL,
    period_from TEXT,
    period_to TEXT,
    rows INTEGER NOT NULL CHECK (rows >= 0),
    suppressed_cells INTEGER NOT NULL CHECK (suppressed_cells >= 0),
    withheld_records INTEGER NOT NULL CHECK (withheld_records >= 0),
    epsilon REAL,
    receipt_sha256 TEXT NOT NULL,
    destination TEXT NOT NULL
);
CREATE TABLE agreement_stops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agreement_id TEXT NOT NULL,
    agreement_version TEXT,
    reason TEXT NOT NULL,
    stopped_at TEXT NOT NULL
);
CREATE INDEX agreement_stops_id ON agreement_stops (agreement_id);
"""
    + _append_only("privacy_ledger", "the privacy ledger")
    + _append_only("transfers", "the transfer register")
    + _append_only("agreement_stops", "the list of agreement stops")
)


class StateError(EpibridgeError):
    """The node's state file cannot be used (a newer version, or not a state file)."""


def utc_text(at: datetime, what: str) -> str:
    """A timezone-aware time as ISO 8601 in UTC (the form stored in the state file)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime (UTC), got {at!r}")
    return at.astimezone(UTC).isoformat()


def utc_time(text: str) -> datetime:
    """The inverse of ``utc_text``."""
    return datetime.fromisoformat(text).astimezone(UTC)


class NodeState:
    """An open connection to the node's state file, created with its schema on first open."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; each write says BEGIN IMMEDIATE.
        self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            self._open()
        except sqlite3.OperationalError as exc:
            self._con.close()
            raise StateError(
                f"{self.path}: cannot open the node's state file ({exc})\n"
                "  what to do: if another epibridge command is running on this node, let it "
                "finish and try again; otherwise check the folder's permissions"
            ) from exc
        except sqlite3.DatabaseError as exc:
            self._con.close()
            raise StateError(
                f"{self.path}: not a readable epibridge state file ({exc})\n"
                "  what to do: point the node's home at its own folder; restore the file "
                "from the node's backup if it was damaged"
            ) from exc
        except BaseException:
            self._con.close()
            raise

    def _open(self) -> None:
        self._con.execute("PRAGMA foreign_keys = ON")
        self._con.execute("PRAGMA journal_mode = WAL")
        # The schema is created statement by statement inside one BEGIN IMMEDIATE
        # (executescript would commit on its own), so two processes opening a new file
        # at once cannot both create it: the second waits, then finds the tables.
        with self.write() as c:
            row = c.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if row is None:
                for statement in _statements(_SCHEMA):
                    c.execute(statement)
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                return
            found = c.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if found is None:
            raise StateError(
                f"{self.path}: the state file has no schema version (damaged)\n"
                "  what to do: restore it from the node's backup"
            )
        if found > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: this state file has schema version {found}, newer than this "
                f"epibridge understands (up to {SCHEMA_VERSION})\n"
                "  what to do: upgrade epibridge on this node; do not edit or delete the file "
                "(it holds the privacy ledger and the transfer register)"
            )

    @property
    def connection(self) -> sqlite3.Connection:
        return self._con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``): reads inside it see no
        other writer's changes until it commits, so check-then-insert is atomic."""
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> NodeState:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers hold ``;`` inside BEGIN ... END)."""
    out: list[str] = []
    current = ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out
