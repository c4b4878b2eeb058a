"""The transfer register: every release that left the node, what it held and on what basis.

Data-protection laws in the region (and the sharing agreements themselves) ask a
controller to be able to show every transfer: to whom, when, under which agreement and
legal basis, and what was in it. One row per release, written after the release is on
disk, never changed or deleted (triggers in the state file); ``export_csv`` gives the
data-protection officer a file to read without epibridge.
"""

from __future__ import annotations

import csv
import dataclasses
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from epibridge.model.errors import EpibridgeError
from epibridge.node.state import NodeState, utc_text, utc_time


class RegisterError(EpibridgeError):
    """A transfer that cannot be recorded (the release is already in the register)."""


@dataclass(frozen=True)
class Transfer:
    """One release, as the register keeps it."""

    release_id: str
    created_at: datetime  # UTC
    sender: str  # ISO3 of the sending country
    recipient: str  # "hub" or a partner's name/ISO3
    agreement_id: str
    agreement_version: str
    agreement_sha256: str
    purpose: str
    legal_basis: str
    datasets: str  # "counts", "cases" or "cases,counts"
    diseases: str  # ";"-separated regional codes
    period_from: date | None
    period_to: date | None
    rows: int
    suppressed_cells: int
    withheld_records: int
    epsilon: float | None
    receipt_sha256: str
    destination: str  # where the release was written or sent


FIELDS = tuple(f.name for f in dataclasses.fields(Transfer))
_COLUMNS = ", ".join(FIELDS)


def _stored(t: Transfer) -> tuple[object, ...]:
    values = dataclasses.asdict(t)
    values["created_at"] = utc_text(t.created_at, "the transfer's created_at")
    for name in ("period_from", "period_to"):
        d = values[name]
        values[name] = None if d is None else d.isoformat()
    return tuple(values[name] for name in FIELDS)


def _loaded(row: tuple[object, ...]) -> Transfer:
    values = dict(zip(FIELDS, row, strict=True))
    values["created_at"] = utc_time(str(values["created_at"]))
    for name in ("period_from", "period_to"):
        d = values[name]
        values[name] = None if d is None else date.fromisoformat(str(d))
    return Transfer(**values)  # type: ignore[arg-type]


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class TransferRegister:
    """Appends to and reads the register kept in the node's state file."""

    def __init__(self, state: NodeState) -> None:
        self._state = state

    def append(self, t: Transfer) -> None:
        """Record one release; a release id already in the register is refused."""
        row = _stored(t)
        marks = ", ".join("?" for _ in FIELDS)
        try:
            with self._state.write() as con:
                con.execute(f"INSERT INTO transfers ({_COLUMNS}) VALUES ({marks})", row)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise RegisterError(
                f"release {t.release_id} is already in the transfer register\n"
                "  what to do: each release is registered once; make a new release "
                "(with a new id) instead of registering this one again"
            ) from exc

    def transfers(self) -> list[Transfer]:
        """Every transfer, in the order they were registered."""
        rows = self._state.connection.execute(
            f"SELECT {_COLUMNS} FROM transfers ORDER BY seq"
        ).fetchall()
        return [_loaded(tuple(r)) for r in rows]

    def export_csv(self, path: Path) -> int:
        """Write the register as CSV (header, then one row per transfer; ISO dates).

        Returns the number of transfers written.
        """
        rows = self.transfers()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(FIELDS)
            for t in rows:
                out.writerow([_csv_cell(getattr(t, name)) for name in FIELDS])
        return len(rows)
