"""Agreement stops: a country can halt releases under an agreement at once, on its own.

A sharing agreement can be suspended by either party (a breach, a change of law, an
expired ethics approval) before its end date. The stop is recorded on the node, where
nothing leaves without passing ``protect``, which refuses a stopped agreement. Stops are
append-only like the rest of the node's state: a stopped version stays stopped, and
releases resume under a new agreement version (or, after a stop of every version, a new
agreement id), which both parties sign again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from epibridge.model.errors import EpibridgeError
from epibridge.node.state import NodeState, utc_text, utc_time


class StopError(EpibridgeError):
    """A stop that cannot be recorded as asked."""


@dataclass(frozen=True)
class Stop:
    """An agreement (one version, or every version when ``agreement_version`` is None) stopped."""

    agreement_id: str
    agreement_version: str | None  # None: every version is stopped
    reason: str
    stopped_at: datetime


class AgreementStops:
    """Records and looks up stops in the node's state file."""

    def __init__(self, state: NodeState) -> None:
        self._state = state

    def stop(self, agreement_id: str, version: str | None, reason: str, at: datetime) -> Stop:
        """Stop ``version`` of ``agreement_id`` (every version when None), at once.

        ``at`` is when the stop was decided, kept for the record.
        """
        if not agreement_id.strip():
            raise StopError("the agreement id to stop is empty")
        if not reason.strip():
            raise StopError(
                f"a stop of agreement {agreement_id} needs a reason\n"
                "  what to do: say why (it is kept in the node's records and shown on refusal)"
            )
        reason = reason.strip()
        when = utc_text(at, "the time of the stop")
        with self._state.write() as con:
            con.execute(
                "INSERT INTO agreement_stops (agreement_id, agreement_version, reason,"
                " stopped_at) VALUES (?, ?, ?, ?)",
                (agreement_id, version, reason, when),
            )
        return Stop(agreement_id, version, reason, utc_time(when))

    def stopped(self, agreement_id: str, version: str) -> Stop | None:
        """The first stop that applies to ``version`` of ``agreement_id``, or None."""
        row = self._state.connection.execute(
            "SELECT agreement_id, agreement_version, reason, stopped_at FROM agreement_stops"
            " WHERE agreement_id = ? AND (agreement_version IS NULL OR agreement_version = ?)"
            " ORDER BY seq LIMIT 1",
            (agreement_id, version),
        ).fetchone()
        if row is None:
            return None
        return Stop(row[0], row[1], row[2], utc_time(row[3]))

    def stops(self, agreement_id: str | None = None) -> list[Stop]:
        """Every stop recorded, oldest first; only those of ``agreement_id`` when given."""
        sql = "SELECT agreement_id, agreement_version, reason, stopped_at FROM agreement_stops"
        args: tuple[str, ...] = ()
        if agreement_id is not None:
            sql += " WHERE agreement_id = ?"
            args = (agreement_id,)
        rows = self._state.connection.execute(sql + " ORDER BY seq", args).fetchall()
        return [Stop(a, v, r, utc_time(t)) for a, v, r, t in rows]
