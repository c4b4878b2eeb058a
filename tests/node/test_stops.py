"""Agreement stops: one version or every version, persisted, append-only."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from epibridge.node.state import NodeState
from epibridge.node.stops import AgreementStops, Stop, StopError

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
LATER = AT + timedelta(days=3)


def test_stopping_one_version(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        stops = AgreementStops(state)
        assert stops.stopped("THA-hub-dengue", "2") is None
        done = stops.stop("THA-hub-dengue", "2", "  ethics approval expired ", AT)
        assert done == Stop("THA-hub-dengue", "2", "ethics approval expired", AT)
        assert stops.stopped("THA-hub-dengue", "2") == done
        assert stops.stopped("THA-hub-dengue", "1") is None
        assert stops.stopped("THA-hub-dengue", "3") is None
        assert stops.stopped("LAO-hub-dengue", "2") is None


def test_stopping_every_version(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        stops = AgreementStops(state)
        done = stops.stop("THA-hub-dengue", None, "breach reported by the hub", AT)
        for version in ("1", "2", "17"):
            assert stops.stopped("THA-hub-dengue", version) == done
        assert stops.stopped("THA-hub", "1") is None  # ids match exactly, not by prefix


def test_the_first_applicable_stop_is_reported(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        stops = AgreementStops(state)
        first = stops.stop("THA-hub-dengue", "2", "version 2 withdrawn", AT)
        every = stops.stop("THA-hub-dengue", None, "agreement ended", LATER)
        assert stops.stopped("THA-hub-dengue", "2") == first
        assert stops.stopped("THA-hub-dengue", "1") == every
        assert stops.stops() == [first, every]
        assert stops.stops("LAO-hub-dengue") == []


def test_stops_persist_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    bangkok = timezone(timedelta(hours=7))
    with NodeState(path) as state:
        AgreementStops(state).stop("THA-hub-dengue", "2", "law changed", AT.astimezone(bangkok))
    with NodeState(path) as state:
        got = AgreementStops(state).stopped("THA-hub-dengue", "2")
    assert got == Stop("THA-hub-dengue", "2", "law changed", AT)
    assert got is not None
    assert got.stopped_at.tzinfo == UTC


def test_a_stop_needs_a_reason_and_an_aware_time(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        stops = AgreementStops(state)
        with pytest.raises(StopError, match="needs a reason"):
            stops.stop("THA-hub-dengue", "2", "   ", AT)
        with pytest.raises(StopError, match="agreement id to stop is empty"):
            stops.stop(" ", "2", "why", AT)
        with pytest.raises(ValueError, match="timezone-aware"):
            stops.stop("THA-hub-dengue", "2", "why", datetime(2026, 11, 23, 9, 30))
        assert stops.stops() == []


def test_stops_are_append_only(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        AgreementStops(state).stop("THA-hub-dengue", None, "breach", AT)
        con = state.connection
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE agreement_stops SET agreement_version = '0'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("DELETE FROM agreement_stops")
        assert AgreementStops(state).stopped("THA-hub-dengue", "5") is not None
