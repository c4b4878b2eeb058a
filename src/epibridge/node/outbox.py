"""The outbox: sealed submissions waiting to reach the hub, kept until the hub has answered.

A node is often offline (a provincial office, a satellite link, a hub being upgraded), so
sealing and sending are separate: ``enqueue`` records a sealed file, ``push`` tries to
deliver every item that is due. Each item is a row in the node's state file:

    queued -> sending -> acknowledged      the hub took it (or already had it)
                      -> rejected          the hub refused it, with its reason: terminal
                      -> queued            a transient failure: retried after a backoff
    queued -> sent                         exported to a file for offline transfer; it stays
                                           due, so a later push (answered "duplicate" if the
                                           file got there first) or the hub's receipt file
                                           acknowledges it

Sending is two transactions around the network call: the item is marked ``sending``
first, the hub's answer recorded after. A crash in between (power cut, killed process, a
transport that raises) leaves the item ``sending``; once its lease has run out, ``push``
puts it back in the queue. Sending again is safe because the hub is idempotent by
``submission_id`` (docs/protocol.md): a second delivery is answered ``duplicate``, which
counts as acknowledged. The lease is what keeps two pushes (a scheduled job and a person
at the terminal) from both sending an item while the first is still waiting for an answer.

Retries use exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential
Backoff And Jitter", 2015): the delay is drawn uniformly from zero to a ceiling that
doubles with each failure, up to a cap, so that many nodes coming back online together do
not hit the hub in lockstep. The random source and the clock are passed in.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol, TypeAlias, assert_never, get_args

from epibridge.model.errors import EpibridgeError
from epibridge.node.state import NodeState, utc_text, utc_time

State: TypeAlias = Literal["queued", "sending", "sent", "acknowledged", "rejected"]
STATES: tuple[State, ...] = get_args(State)
TERMINAL: frozenset[State] = frozenset({"acknowledged", "rejected"})

# How long an item may stay ``sending`` before another push may take it back: longer than
# any single upload should take, short enough that a crash delays a submission by minutes.
LEASE = timedelta(minutes=10)

# Reasons the node itself gives when a queued file can no longer be sent as sealed.
MISSING_FILE = "local_file_missing"
CHANGED_FILE = "local_file_changed"

# Kept here (not in state.py's schema) while the outbox is new; IF NOT EXISTS makes it
# safe on every open, and on state files made before the outbox existed.
_TABLE = f"""
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    created_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT,
    sending_since TEXT,
    last_error TEXT,
    reason TEXT,
    receipt TEXT,
    manifest_sha256 TEXT,
    release_id TEXT UNIQUE,
    upload_id TEXT,
    updated_at TEXT NOT NULL
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state)"
_COLUMNS = (
    "submission_id, path, size, created_at, state, attempts, next_attempt_at,"
    " last_error, reason, receipt, manifest_sha256, release_id"
)


class OutboxError(EpibridgeError):
    """A submission that cannot be queued (no such file, a bad id, an id already used)."""


@dataclass(frozen=True)
class Item:
    """One sealed submission in the outbox, as ``status`` reports it."""

    submission_id: str
    path: Path
    size: int
    created_at: datetime  # UTC
    state: State
    attempts: int  # sends started, including any interrupted by a crash
    next_attempt_at: datetime | None  # None once terminal
    last_error: str | None  # the last transient failure, or the hub's rejection message
    reason: str | None  # the hub's machine-readable reason, when rejected
    receipt: str | None  # the hub's receipt, when acknowledged
    manifest_sha256: str | None = None  # what the hub's receipt must name
    release_id: str | None = None  # the protected release that was sealed


# -- what the hub can answer ------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The hub took the submission; ``receipt`` is its acknowledgement."""

    receipt: str


@dataclass(frozen=True)
class Duplicate:
    """The hub already had this submission_id (an earlier send got through): a success."""

    receipt: str


@dataclass(frozen=True)
class Rejected:
    """The hub refused the submission; sending it again cannot help."""

    reason: str  # machine-readable, e.g. "bad_signature" (docs/protocol.md)
    message: str


@dataclass(frozen=True)
class Transient:
    """No answer worth keeping (network down, timeout, hub error 5xx): try again later."""

    message: str


Delivery: TypeAlias = Accepted | Duplicate | Rejected | Transient


class Transport(Protocol):
    """Carries one sealed file to the hub. Network failures are answered ``Transient``, not
    raised: an exception is treated as a crash (the item waits out its lease)."""

    def send(self, path: Path, submission_id: str) -> Delivery: ...


class TwinTransport:
    """An in-memory hub for tests and rehearsals.

    Answers each submission from its script first (a ``Delivery``, or an exception to
    raise, which simulates a crash mid-send); once the script is used up, it behaves like
    the real hub: accepted the first time, duplicate after.
    """

    def __init__(self, script: Mapping[str, Sequence[Delivery | BaseException]] | None = None):
        self._script: dict[str, list[Delivery | BaseException]] = {
            k: list(v) for k, v in (script or {}).items()
        }
        self.calls: list[str] = []  # every send, in order
        self.received: dict[str, bytes] = {}  # what the hub holds, by submission_id

    def script(self, submission_id: str, *outcomes: Delivery | BaseException) -> None:
        """Queue more answers for ``submission_id``."""
        self._script.setdefault(submission_id, []).extend(outcomes)

    def send(self, path: Path, submission_id: str) -> Delivery:
        self.calls.append(submission_id)
        pending = self._script.get(submission_id)
        if pending:
            outcome = pending.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, Accepted | Duplicate):
                self.received.setdefault(submission_id, path.read_bytes())
            return outcome
        receipt = f"twin-receipt:{submission_id}"
        if submission_id in self.received:
            return Duplicate(receipt)
        self.received[submission_id] = path.read_bytes()
        return Accepted(receipt)


# -- backoff ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: after the n-th failed send, wait a delay drawn
    uniformly from [0, min(cap, base * 2**(n-1))]."""

    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.base <= timedelta(0):
            raise ValueError(f"the backoff base must be positive, got {self.base}")
        if self.cap < self.base:
            raise ValueError(f"the backoff cap ({self.cap}) must be at least its base")

    def ceiling(self, failures: int) -> timedelta:
        """The longest delay after ``failures`` failed sends (1 or more)."""
        if failures < 1:
            raise ValueError(f"failures must be 1 or more, got {failures}")
        # In float seconds: 2**n overflows timedelta long before it overflows a float
        # (which saturates at inf, and min() then gives the cap).
        grown = self.base.total_seconds() * 2.0 ** min(failures - 1, 1000)
        if grown >= self.cap.total_seconds():
            return self.cap
        return min(self.cap, timedelta(seconds=grown))

    def delay(self, failures: int, rng: random.Random) -> timedelta:
        """A delay drawn uniformly from [0, ceiling(failures)]."""
        ceiling = self.ceiling(failures)
        # min(): rounding to whole microseconds must not step past the ceiling.
        return min(ceiling, timedelta(seconds=rng.uniform(0.0, ceiling.total_seconds())))


# -- the outbox -------------------------------------------------------------------------


@dataclass(frozen=True)
class PushReport:
    """What one ``push`` did, by submission_id (each in enqueue order)."""

    recovered: tuple[str, ...]  # taken back from a crashed send (lease run out)
    acknowledged: tuple[str, ...]  # the hub has it (accepted, or duplicate)
    duplicates: tuple[str, ...]  # the subset of acknowledged the hub already had
    rejected: tuple[str, ...]
    retrying: tuple[str, ...]  # transient failure: queued again with a backoff

    @property
    def sent(self) -> int:
        """How many sends this push made."""
        return len(self.acknowledged) + len(self.rejected) + len(self.retrying)


def _submission_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError) as exc:
        raise OutboxError(
            f"submission id {text!r} is not a UUID\n"
            "  what to do: queue the submission_id from the sealed submission's manifest"
        ) from exc


def _item(row: Sequence[object]) -> Item:
    sid, path, size, created, state, attempts, next_at, error, reason, receipt, sha, rel = row
    return Item(
        submission_id=str(sid),
        path=Path(str(path)),
        size=int(str(size)),
        created_at=utc_time(str(created)),
        state=_state(str(state)),
        attempts=int(str(attempts)),
        next_attempt_at=None if next_at is None else utc_time(str(next_at)),
        last_error=None if error is None else str(error),
        reason=None if reason is None else str(reason),
        receipt=None if receipt is None else str(receipt),
        manifest_sha256=None if sha is None else str(sha),
        release_id=None if rel is None else str(rel),
    )


def _state(text: str) -> State:
    for s in STATES:
        if s == text:
            return s
    raise ValueError(f"unknown outbox state {text!r}")  # the CHECK constraint forbids it


def _local_problem(item: Item) -> Rejected | None:
    """Why the queued file can no longer be sent as it was sealed, if it cannot."""
    try:
        size = item.path.stat().st_size
    except OSError:
        return Rejected(
            MISSING_FILE,
            f"{item.path}: the sealed file is gone; seal the release again "
            "(with a new submission_id) and queue that",
        )
    if size != item.size:
        return Rejected(
            CHANGED_FILE,
            f"{item.path}: the sealed file changed size since it was queued "
            f"({item.size} -> {size} bytes); seal the release again and queue that",
        )
    return None


class Outbox:
    """The queue of sealed submissions kept in the node's state file."""

    def __init__(
        self, state: NodeState, *, backoff: Backoff | None = None, lease: timedelta = LEASE
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError(f"the lease must be positive, got {lease}")
        self._state = state
        self.backoff = backoff or Backoff()
        self.lease = lease
        with state.write() as con:
            con.execute(_TABLE)
            con.execute(_INDEX)

    def enqueue(
        self,
        path: Path,
        submission_id: str,
        at: datetime,
        *,
        manifest_sha256: str | None = None,
        release_id: str | None = None,
    ) -> Item:
        """Queue a sealed file for sending; due at once.

        Idempotent by ``submission_id``: queueing the same submission again returns the
        item already there, whatever its state (a rejected submission is corrected by a new
        one, with a new id). The same id with a different file is refused.
        """
        sid = _submission_id(submission_id)
        where = Path(path).resolve()
        if not where.is_file():
            raise OutboxError(
                f"{where}: no such sealed file\n"
                "  what to do: seal the release first, then queue the file it wrote"
            )
        size = where.stat().st_size
        when = utc_text(at, "the time of queueing")
        with self._state.write() as con:
            con.execute(
                "INSERT INTO outbox (submission_id, path, size, created_at, state, attempts,"
                " next_attempt_at, manifest_sha256, release_id, updated_at)"
                " VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)"
                " ON CONFLICT (submission_id) DO NOTHING",
                (sid, str(where), size, when, when, manifest_sha256, release_id, when),
            )
            row = con.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE submission_id = ?", (sid,)
            ).fetchone()
        item = _item(row)
        if item.path != where:
            raise OutboxError(
                f"submission {sid} is already queued with another file ({item.path}), "
                f"not {where}\n"
                "  what to do: each sealed file has its own submission_id; queue the file "
                "that was sealed with this id, or seal again for a new id"
            )
        return item

    def item(self, submission_id: str) -> Item | None:
        """The item of ``submission_id``, if queued here."""
        row = self._state.connection.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE submission_id = ?", (submission_id,)
        ).fetchone()
        return None if row is None else _item(row)

    def by_release(self, release_id: str) -> Item | None:
        """The item a protected release was sealed into, if it was."""
        row = self._state.connection.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE release_id = ?", (release_id,)
        ).fetchone()
        return None if row is None else _item(row)

    def mark_sent(self, submission_id: str, at: datetime) -> Item:
        """Record that the sealed file left by other means (exported for a USB stick).

        The item stays due: a later push is answered ``duplicate`` if the file reached
        the hub first, and the hub's receipt file acknowledges it (``acknowledge``).
        """
        when = utc_text(at, "the time of export")
        with self._state.write() as con:
            con.execute(
                "UPDATE outbox SET state = 'sent', updated_at = ?"
                " WHERE submission_id = ? AND state = 'queued'",
                (when, submission_id),
            )
        found = self.item(submission_id)
        if found is None:
            raise OutboxError(f"submission {submission_id} is not in this node's outbox")
        return found

    def acknowledge(self, submission_id: str, receipt: str, at: datetime) -> Item:
        """Record the hub's (already verified) receipt, e.g. from a file the hub handed back."""
        if self.item(submission_id) is None:
            raise OutboxError(f"submission {submission_id} is not in this node's outbox")
        self._record(submission_id, 0, Accepted(receipt), at, random.Random(0))
        found = self.item(submission_id)
        assert found is not None
        return found

    # The hub's resumable-upload id of an item, so that a restarted node resumes it.
    def get_upload(self, submission_id: str) -> str | None:
        row = self._state.connection.execute(
            "SELECT upload_id FROM outbox WHERE submission_id = ?", (submission_id,)
        ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def set_upload(self, submission_id: str, upload_id: str | None) -> None:
        with self._state.write() as con:
            con.execute(
                "UPDATE outbox SET upload_id = ? WHERE submission_id = ?",
                (upload_id, submission_id),
            )

    def status(self) -> list[Item]:
        """Every item, in enqueue order."""
        rows = self._state.connection.execute(
            f"SELECT {_COLUMNS} FROM outbox ORDER BY seq"
        ).fetchall()
        return [_item(r) for r in rows]

    def due(self, at: datetime) -> list[Item]:
        """Queued items whose next attempt is at or before ``at``, in enqueue order.

        Items stuck ``sending`` are not listed until ``recover`` (run by ``push``) has put
        them back in the queue.
        """
        utc_text(at, "the time asked about")
        rows = self._state.connection.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state IN ('queued', 'sent') ORDER BY seq"
        ).fetchall()
        # Compared as datetimes, not as text: isoformat drops zero microseconds, so two
        # stored times do not always sort as strings.
        items = [_item(r) for r in rows]
        return [i for i in items if i.next_attempt_at is not None and i.next_attempt_at <= at]

    def recover(self, at: datetime) -> tuple[str, ...]:
        """Put back in the queue, due at once, items left ``sending`` for longer than the
        lease (the process sending them stopped before the answer was recorded)."""
        when = utc_text(at, "the time of recovery")
        with self._state.write() as con:
            rows = con.execute(
                "SELECT submission_id, sending_since FROM outbox"
                " WHERE state = 'sending' ORDER BY seq"
            ).fetchall()
            stale = tuple(
                str(sid)
                for sid, since in rows
                if since is None or utc_time(str(since)) + self.lease <= at
            )
            con.executemany(
                "UPDATE outbox SET state = 'queued', next_attempt_at = ?, sending_since = NULL,"
                " last_error = ?, updated_at = ? WHERE submission_id = ?",
                [
                    (
                        when,
                        "the node stopped while sending, before the hub's answer was "
                        "recorded; sending again",
                        when,
                        sid,
                    )
                    for sid in stale
                ],
            )
        return stale

    def push(self, transport: Transport, at: datetime, rng: random.Random) -> PushReport:
        """Send every due item once, in enqueue order, and record each answer."""
        recovered = self.recover(at)
        done: dict[str, list[str]] = {
            "acknowledged": [],
            "duplicates": [],
            "rejected": [],
            "retrying": [],
        }
        for item in self.due(at):
            attempt = self._claim(item.submission_id, at)
            if attempt is None:  # another push took it between due() and now
                continue
            delivery = _local_problem(item) or transport.send(item.path, item.submission_id)
            self._record(item.submission_id, attempt, delivery, at, rng)
            match delivery:
                case Accepted():
                    done["acknowledged"].append(item.submission_id)
                case Duplicate():
                    done["acknowledged"].append(item.submission_id)
                    done["duplicates"].append(item.submission_id)
                case Rejected():
                    done["rejected"].append(item.submission_id)
                case Transient():
                    done["retrying"].append(item.submission_id)
        return PushReport(
            recovered=recovered,
            acknowledged=tuple(done["acknowledged"]),
            duplicates=tuple(done["duplicates"]),
            rejected=tuple(done["rejected"]),
            retrying=tuple(done["retrying"]),
        )

    def _claim(self, submission_id: str, at: datetime) -> int | None:
        """Mark the item ``sending`` (its own transaction, committed before the network
        call); the attempt number, or None when it is no longer queued."""
        when = utc_text(at, "the time of sending")
        with self._state.write() as con:
            row = con.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1,"
                " sending_since = ?, updated_at = ? WHERE submission_id = ?"
                " AND state IN ('queued', 'sent')"
                " RETURNING attempts",
                (when, when, submission_id),
            ).fetchone()
        return None if row is None else int(row[0])

    def _record(
        self,
        submission_id: str,
        attempt: int,
        delivery: Delivery,
        at: datetime,
        rng: random.Random,
    ) -> None:
        """Record the hub's answer. A final answer is recorded even if the item was
        recovered meanwhile (it is the truth); a transient one only while this send still
        holds the item, so it cannot undo another push's newer result."""
        when = utc_text(at, "the time of the answer")
        with self._state.write() as con:
            match delivery:
                case Accepted(receipt) | Duplicate(receipt):
                    con.execute(
                        "UPDATE outbox SET state = 'acknowledged', receipt = ?,"
                        " next_attempt_at = NULL, sending_since = NULL, last_error = NULL,"
                        " updated_at = ? WHERE submission_id = ?"
                        " AND state IN ('queued', 'sending', 'sent')",
                        (receipt, when, submission_id),
                    )
                case Rejected(reason, message):
                    con.execute(
                        "UPDATE outbox SET state = 'rejected', reason = ?, last_error = ?,"
                        " next_attempt_at = NULL, sending_since = NULL, updated_at = ?"
                        " WHERE submission_id = ? AND state IN ('queued', 'sending', 'sent')",
                        (reason, message, when, submission_id),
                    )
                case Transient(message):
                    retry = utc_text(at + self.backoff.delay(attempt, rng), "the next attempt")
                    con.execute(
                        "UPDATE outbox SET state = 'queued', next_attempt_at = ?,"
                        " last_error = ?, sending_since = NULL, updated_at = ?"
                        " WHERE submission_id = ? AND state = 'sending' AND attempts = ?",
                        (retry, message, when, submission_id, attempt),
                    )
                case _:
                    assert_never(delivery)
