"""The transfer register: append, read back, refuse duplicates and edits, export to CSV."""

from __future__ import annotations

import csv
import dataclasses
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from epibridge.node.register import FIELDS, RegisterError, Transfer, TransferRegister
from epibridge.node.state import NodeState

FIRST = Transfer(
    release_id="0f8c2a9e-1111-4c1e-9d7b-5b0f3e2a7c01",
    created_at=datetime(2026, 11, 23, 9, 30, 5, tzinfo=UTC),
    sender="THA",
    recipient="hub",
    agreement_id="THA-hub-dengue",
    agreement_version="2",
    agreement_sha256="a" * 64,
    purpose="regional dengue surveillance; outbreak response",
    legal_basis="Thailand Communicable Diseases Act B.E. 2558, section 11",
    datasets="counts",
    diseases="DENV;CHIKV",
    period_from=date(2026, 1, 5),
    period_to=date(2026, 11, 22),
    rows=1234,
    suppressed_cells=17,
    withheld_records=0,
    epsilon=None,
    receipt_sha256="b" * 64,
    destination="/srv/epibridge/outbox/2026-11-23",
)
SECOND = dataclasses.replace(
    FIRST,
    release_id="0f8c2a9e-2222-4c1e-9d7b-5b0f3e2a7c02",
    created_at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
    recipient="LAO",
    datasets="cases,counts",
    period_from=None,
    period_to=None,
    rows=0,
    suppressed_cells=0,
    withheld_records=3,
    epsilon=0.5,
    destination='usb: E:\\epibridge, "weekly"',
)


def test_append_and_read_back(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        register = TransferRegister(state)
        assert register.transfers() == []
        register.append(FIRST)
        register.append(SECOND)
        assert register.transfers() == [FIRST, SECOND]


def test_register_persists_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with NodeState(path) as state:
        TransferRegister(state).append(FIRST)
    with NodeState(path) as state:
        register = TransferRegister(state)
        register.append(SECOND)
        got = register.transfers()
    assert got == [FIRST, SECOND]
    assert got[0].created_at.tzinfo == UTC
    assert got[1].epsilon == 0.5


def test_duplicate_release_is_refused(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        register = TransferRegister(state)
        register.append(FIRST)
        again = dataclasses.replace(FIRST, rows=1)
        with pytest.raises(RegisterError, match=f"release {FIRST.release_id} is already"):
            register.append(again)
        assert register.transfers() == [FIRST]


def test_register_is_append_only(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        TransferRegister(state).append(FIRST)
        con = state.connection
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE transfers SET recipient = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("DELETE FROM transfers WHERE release_id = ?", (FIRST.release_id,))
        assert TransferRegister(state).transfers() == [FIRST]


def test_times_are_kept_in_utc(tmp_path: Path) -> None:
    vientiane = timezone(timedelta(hours=7))
    local = dataclasses.replace(
        FIRST, created_at=datetime(2026, 11, 23, 16, 30, 5, tzinfo=vientiane)
    )
    naive = dataclasses.replace(SECOND, created_at=datetime(2026, 11, 23, 16, 30))
    with NodeState(tmp_path / "state.sqlite") as state:
        register = TransferRegister(state)
        register.append(local)
        with pytest.raises(ValueError, match="timezone-aware"):
            register.append(naive)
        got = register.transfers()
    assert got == [FIRST]
    assert got[0].created_at.utcoffset() == timedelta(0)


def test_negative_counts_are_refused_by_the_file(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            TransferRegister(state).append(dataclasses.replace(FIRST, rows=-1))
        assert TransferRegister(state).transfers() == []


def test_export_csv(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "register.csv"
    with NodeState(tmp_path / "state.sqlite") as state:
        register = TransferRegister(state)
        assert register.export_csv(out) == 0
        with out.open(encoding="utf-8", newline="") as f:
            assert list(csv.reader(f)) == [list(FIELDS)]
        register.append(FIRST)
        register.append(SECOND)
        assert register.export_csv(out) == 2
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    first, second = rows
    assert list(first) == list(FIELDS)
    assert first["release_id"] == FIRST.release_id
    assert first["created_at"] == "2026-11-23T09:30:05+00:00"
    assert first["period_from"] == "2026-01-05"
    assert first["period_to"] == "2026-11-22"
    assert first["rows"] == "1234"
    assert first["epsilon"] == ""
    assert first["purpose"] == FIRST.purpose
    assert second["period_from"] == ""
    assert second["epsilon"] == "0.5"
    assert second["destination"] == SECOND.destination  # commas and quotes survive
    assert second["datasets"] == "cases,counts"
