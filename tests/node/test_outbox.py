"""The outbox: queueing sealed submissions, sending them, retries, crashes and restarts."""

from __future__ import annotations

import contextlib
import random
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epibridge.node.outbox import (
    CHANGED_FILE,
    LEASE,
    MISSING_FILE,
    Accepted,
    Backoff,
    Delivery,
    Duplicate,
    Item,
    Outbox,
    OutboxError,
    Rejected,
    Transient,
    TwinTransport,
)
from epibridge.node.state import NodeState

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def _sid(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def _sealed(folder: Path, n: int, size: int = 100) -> Path:
    path = folder / f"submission-{n}.zip"
    path.write_bytes(bytes([n % 256]) * size)
    return path


def _item(outbox: Outbox, sid: str) -> Item:
    [found] = [i for i in outbox.status() if i.submission_id == sid]
    return found


class CrashError(Exception):
    """Stands for the process dying in the middle of a send."""


# -- queueing ---------------------------------------------------------------------------


def test_enqueue_twice_is_one_item(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        path = _sealed(tmp_path, 0, size=321)
        first = outbox.enqueue(path, _sid(0), AT)
        again = outbox.enqueue(path, _sid(0), AT + timedelta(hours=1))
        assert first == again
        assert outbox.status() == [first]
        assert first.state == "queued"
        assert first.size == 321
        assert first.attempts == 0
        assert first.created_at == AT
        assert first.next_attempt_at == AT
        assert first.path == path.resolve()
        assert (first.last_error, first.reason, first.receipt) == (None, None, None)


def test_enqueue_refuses_bad_input(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        path = _sealed(tmp_path, 0)
        with pytest.raises(OutboxError, match="not a UUID"):
            outbox.enqueue(path, "release-1", AT)
        with pytest.raises(OutboxError, match="no such sealed file"):
            outbox.enqueue(tmp_path / "missing.zip", _sid(0), AT)
        outbox.enqueue(path, _sid(0), AT)
        with pytest.raises(OutboxError, match="already queued with another file"):
            outbox.enqueue(_sealed(tmp_path, 1), _sid(0), AT)
        with pytest.raises(ValueError, match="timezone-aware"):
            outbox.enqueue(path, _sid(2), datetime(2026, 11, 23, 9, 30))
        assert [i.submission_id for i in outbox.status()] == [_sid(0)]


# -- answers from the hub ---------------------------------------------------------------


def test_success_records_the_receipt_and_is_not_sent_again(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        paths = [_sealed(tmp_path, n) for n in range(3)]
        for n in (2, 0, 1):  # enqueue order, not id order, decides the sending order
            outbox.enqueue(paths[n], _sid(n), AT)
        hub = TwinTransport()
        report = outbox.push(hub, AT, random.Random(1))
        assert hub.calls == [_sid(2), _sid(0), _sid(1)]
        assert report.acknowledged == (_sid(2), _sid(0), _sid(1))
        assert report.sent == 3
        assert report.duplicates == report.rejected == report.retrying == ()
        assert hub.received[_sid(0)] == paths[0].read_bytes()
        item = _item(outbox, _sid(0))
        assert item.state == "acknowledged"
        assert item.receipt == f"twin-receipt:{_sid(0)}"
        assert item.attempts == 1
        assert item.next_attempt_at is None
        assert outbox.due(AT + timedelta(days=30)) == []
        assert outbox.push(hub, AT + timedelta(days=30), random.Random(1)).sent == 0
        assert len(hub.calls) == 3


def test_duplicate_counts_as_acknowledged(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        outbox.enqueue(_sealed(tmp_path, 0), _sid(0), AT)
        hub = TwinTransport({_sid(0): [Duplicate("hub-receipt-7")]})
        report = outbox.push(hub, AT, random.Random(1))
        assert report.acknowledged == report.duplicates == (_sid(0),)
        item = _item(outbox, _sid(0))
        assert (item.state, item.receipt) == ("acknowledged", "hub-receipt-7")


def test_rejected_is_terminal_with_the_hubs_reason(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        path = _sealed(tmp_path, 0)
        outbox.enqueue(path, _sid(0), AT)
        hub = TwinTransport({_sid(0): [Rejected("revoked_key", "signing key revoked")]})
        report = outbox.push(hub, AT, random.Random(1))
        assert report.rejected == (_sid(0),)
        item = _item(outbox, _sid(0))
        assert (item.state, item.reason, item.last_error) == (
            "rejected",
            "revoked_key",
            "signing key revoked",
        )
        assert item.receipt is None and item.next_attempt_at is None
        # Queueing the same submission again does not revive it.
        assert outbox.enqueue(path, _sid(0), AT).state == "rejected"
        assert outbox.push(hub, AT + timedelta(days=1), random.Random(1)).sent == 0
        assert hub.calls == [_sid(0)]


def test_a_file_gone_or_changed_since_queueing_is_rejected_without_sending(
    tmp_path: Path,
) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        gone, changed = _sealed(tmp_path, 0), _sealed(tmp_path, 1)
        outbox.enqueue(gone, _sid(0), AT)
        outbox.enqueue(changed, _sid(1), AT)
        gone.unlink()
        changed.write_bytes(b"shorter")
        hub = TwinTransport()
        report = outbox.push(hub, AT, random.Random(1))
        assert hub.calls == []
        assert report.rejected == (_sid(0), _sid(1))
        assert _item(outbox, _sid(0)).reason == MISSING_FILE
        assert _item(outbox, _sid(1)).reason == CHANGED_FILE


# -- retries ----------------------------------------------------------------------------


def test_backoff_ceilings_double_up_to_the_cap() -> None:
    b = Backoff()
    assert [b.ceiling(n).total_seconds() for n in range(1, 5)] == [2, 4, 8, 16]
    assert b.ceiling(12) == timedelta(hours=1)  # 2 * 2**11 = 4096 s > 3600 s
    assert b.ceiling(10_000) == timedelta(hours=1)  # no overflow
    small = Backoff(base=timedelta(seconds=1), cap=timedelta(seconds=5))
    assert [small.ceiling(n).total_seconds() for n in range(1, 6)] == [1, 2, 4, 5, 5]
    with pytest.raises(ValueError, match="1 or more"):
        b.ceiling(0)
    with pytest.raises(ValueError, match="positive"):
        Backoff(base=timedelta(0))
    with pytest.raises(ValueError, match="at least its base"):
        Backoff(base=timedelta(minutes=2), cap=timedelta(minutes=1))


def test_backoff_jitter_is_full_and_drawn_from_the_given_source() -> None:
    b = Backoff()
    draws = [b.delay(6, random.Random(seed)) for seed in range(400)]
    ceiling = b.ceiling(6)  # 64 s
    assert all(timedelta(0) <= d <= ceiling for d in draws)
    # Full jitter spreads over the whole range, not just near the ceiling.
    assert min(draws) < ceiling / 10 and max(draws) > ceiling * 9 / 10
    assert b.delay(6, random.Random(3)) == b.delay(6, random.Random(3))


def test_transient_failures_schedule_jittered_retries(tmp_path: Path) -> None:
    backoff = Backoff(base=timedelta(seconds=2), cap=timedelta(seconds=60))
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state, backoff=backoff)
        outbox.enqueue(_sealed(tmp_path, 0), _sid(0), AT)
        failures = 8
        hub = TwinTransport({_sid(0): [Transient(f"timeout {n}") for n in range(failures)]})
        rng = random.Random(42)
        now = AT
        delays = []
        for n in range(1, failures + 1):
            report = outbox.push(hub, now, rng)
            assert report.retrying == (_sid(0),)
            item = _item(outbox, _sid(0))
            assert (item.state, item.attempts, item.last_error) == ("queued", n, f"timeout {n - 1}")
            assert item.next_attempt_at is not None
            delay = item.next_attempt_at - now
            assert timedelta(0) <= delay <= backoff.ceiling(n)
            assert backoff.ceiling(n) == min(timedelta(seconds=2 * 2 ** (n - 1)), backoff.cap)
            delays.append(delay)
            now = item.next_attempt_at
        assert len(set(delays)) == failures  # drawn, not fixed
        assert outbox.push(hub, now, rng).acknowledged == (_sid(0),)
        assert _item(outbox, _sid(0)).attempts == failures + 1


def test_due_respects_next_attempt_at(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state)
        outbox.enqueue(_sealed(tmp_path, 0), _sid(0), AT)
        outbox.enqueue(_sealed(tmp_path, 1), _sid(1), AT + timedelta(minutes=5))
        assert [i.submission_id for i in outbox.due(AT)] == [_sid(0)]
        hub = TwinTransport({_sid(0): [Transient("hub returned 503")]})
        outbox.push(hub, AT + timedelta(minutes=5), random.Random(7))
        retry = _item(outbox, _sid(0)).next_attempt_at
        assert retry is not None and retry > AT + timedelta(minutes=5)
        assert outbox.due(retry - timedelta(microseconds=1)) == []
        assert [i.submission_id for i in outbox.due(retry)] == [_sid(0)]
        # A push before the retry time does not send it.
        assert outbox.push(hub, retry - timedelta(microseconds=1), random.Random(7)).sent == 0
        assert outbox.push(hub, retry, random.Random(7)).acknowledged == (_sid(0),)


# -- restarts and crashes ---------------------------------------------------------------


def test_reopening_the_state_file_keeps_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    hub = TwinTransport(
        {
            _sid(1): [Rejected("bad_signature", "signature does not verify")],
            _sid(2): [Transient("connection refused")],
        }
    )
    with NodeState(path) as state:
        outbox = Outbox(state)
        for n in range(4):
            outbox.enqueue(_sealed(tmp_path, n), _sid(n), AT)
        outbox.push(hub, AT, random.Random(5))
        outbox.enqueue(_sealed(tmp_path, 9), _sid(9), AT)
        before = outbox.status()
    with NodeState(path) as state:
        after = Outbox(state).status()
    assert after == before
    assert [i.state for i in after] == [
        "acknowledged",
        "rejected",
        "queued",
        "acknowledged",
        "queued",
    ]


def test_a_crash_mid_send_is_retried_after_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    hub = TwinTransport({_sid(0): [CrashError("killed")]})
    with NodeState(path) as state:
        outbox = Outbox(state)
        outbox.enqueue(_sealed(tmp_path, 0), _sid(0), AT)
        outbox.enqueue(_sealed(tmp_path, 1), _sid(1), AT)
        with pytest.raises(CrashError):
            outbox.push(hub, AT, random.Random(1))
        stuck = _item(outbox, _sid(0))
        assert (stuck.state, stuck.attempts) == ("sending", 1)
    with NodeState(path) as state:  # the node restarts
        outbox = Outbox(state)
        assert _item(outbox, _sid(0)).state == "sending"
        # Within the lease the send may still be in flight elsewhere: leave it alone.
        report = outbox.push(hub, AT + LEASE - timedelta(seconds=1), random.Random(1))
        assert report.recovered == () and report.acknowledged == (_sid(1),)
        assert hub.calls == [_sid(0), _sid(1)]
        report = outbox.push(hub, AT + LEASE, random.Random(1))
        assert report.recovered == (_sid(0),)
        assert report.acknowledged == (_sid(0),)
        done = _item(outbox, _sid(0))
        assert (done.state, done.attempts) == ("acknowledged", 2)
        assert hub.calls == [_sid(0), _sid(1), _sid(0)]


def test_a_send_that_reached_the_hub_before_the_crash_ends_as_duplicate(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        outbox = Outbox(state, lease=timedelta(minutes=1))
        outbox.enqueue(_sealed(tmp_path, 0), _sid(0), AT)
        hub = TwinTransport({_sid(0): [CrashError("answer lost")]})
        hub.received[_sid(0)] = b"already there"
        with pytest.raises(CrashError):
            outbox.push(hub, AT, random.Random(1))
        report = outbox.push(hub, AT + timedelta(minutes=1), random.Random(1))
        assert report.duplicates == (_sid(0),)
        assert _item(outbox, _sid(0)).state == "acknowledged"


# -- properties -------------------------------------------------------------------------

_OUTCOMES = st.sampled_from(["accepted", "duplicate", "rejected", "transient", "crash"])


def _answer(kind: str, sid: str) -> Delivery | BaseException:
    match kind:
        case "accepted":
            return Accepted(f"receipt-{sid}")
        case "duplicate":
            return Duplicate(f"receipt-{sid}")
        case "rejected":
            return Rejected("payload_mismatch", "part does not match the manifest")
        case "transient":
            return Transient("timeout")
    return CrashError("killed mid-send")


class _Logged:
    """Wraps the twin hub and logs each send with what came of it (None: a crash)."""

    def __init__(self, inner: TwinTransport) -> None:
        self.inner = inner
        self.log: list[tuple[str, Delivery | None]] = []

    def send(self, path: Path, submission_id: str) -> Delivery:
        try:
            answer = self.inner.send(path, submission_id)
        except CrashError:
            self.log.append((submission_id, None))
            raise
        self.log.append((submission_id, answer))
        return answer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(st.lists(_OUTCOMES, max_size=5), min_size=1, max_size=4),
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=7200), st.booleans()), min_size=1, max_size=10
    ),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_every_item_ends_in_one_state_and_nothing_is_resent_after_acknowledgement(
    scripts: list[list[str]], steps: list[tuple[int, bool]], seed: int
) -> None:
    sids = [_sid(n) for n in range(len(scripts))]
    hub = _Logged(
        TwinTransport(
            {sid: [_answer(k, sid) for k in s] for sid, s in zip(sids, scripts, strict=True)}
        )
    )
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        state = NodeState(home / "state.sqlite")
        try:
            outbox = Outbox(state)
            for n, sid in enumerate(sids):
                outbox.enqueue(_sealed(home, n), sid, AT)
            now = AT
            for seconds, restart in steps:
                now += timedelta(seconds=seconds)
                if restart:
                    state.close()
                    state = NodeState(home / "state.sqlite")
                    outbox = Outbox(state)
                with contextlib.suppress(CrashError):
                    outbox.push(hub, now, rng)
            outbox.recover(now + LEASE)
            final = {i.submission_id: i for i in outbox.status()}
        finally:
            state.close()

    assert sorted(final) == sorted(sids)
    for sid in sids:
        answers = [answer for s, answer in hub.log if s == sid]
        finished = [
            k for k, a in enumerate(answers) if isinstance(a, Accepted | Duplicate | Rejected)
        ]
        # Nothing is sent again once the hub has given a final answer.
        assert finished == [] or finished == [len(answers) - 1]
        item = final[sid]
        assert item.attempts == len(answers)
        last = answers[-1] if answers else None
        if isinstance(last, Accepted | Duplicate):
            assert (item.state, item.receipt) == ("acknowledged", last.receipt)
        elif isinstance(last, Rejected):
            assert (item.state, item.reason) == ("rejected", last.reason)
        else:  # never sent, a transient failure, or a crash: still waiting
            assert item.state == "queued" and item.next_attempt_at is not None
            assert item.receipt is None and item.reason is None
