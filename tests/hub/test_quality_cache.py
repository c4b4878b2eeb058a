"""Scorecards per state, computed once; a page gets the newest held while a slow
computation runs in the background (``hub/quality_cache.py``)."""

from __future__ import annotations

import threading
import time

from epibridge.hub.quality_cache import StateCache


def test_one_computation_per_state_however_many_ask_at_once() -> None:
    cache: StateCache[int] = StateCache()
    calls: list[int] = []
    release = threading.Event()

    def compute() -> int:
        calls.append(1)
        release.wait(10)
        return 42

    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(cache.cached("q", (1,), compute)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    time.sleep(0.1)
    release.set()
    for t in threads:
        t.join(10)
    assert answers == [42] * 4 and len(calls) == 1
    assert cache.cached("q", (1,), lambda: 0) == 42  # held: not computed again
    assert cache.cached("q", (2,), lambda: 7) == 7  # a new state is computed


def test_a_slow_state_serves_the_newest_held_value_then_its_own() -> None:
    cache: StateCache[str] = StateCache()
    assert cache.cached("q", (1,), lambda: "old") == "old"
    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "new"

    found = cache.latest("q", (2,), slow, wait=0.2)  # returns while ``slow`` is blocked
    assert found.value == "old" and not found.current
    assert found.computing_since is not None and found.computing_since <= time.monotonic()
    # another question holds nothing yet: no value, but computing
    other = cache.latest("other", (2,), slow, wait=0.05)
    assert other.value is None and other.computing_since is not None
    release.set()
    fresh = cache.latest("q", (2,), slow, wait=10)
    assert fresh.value == "new" and fresh.current and fresh.computing_since is None


def test_a_fast_state_is_answered_within_the_wait() -> None:
    cache: StateCache[str] = StateCache()
    found = cache.latest("q", (1,), lambda: "value", wait=10)
    assert found.value == "value" and found.current


def test_a_background_failure_is_raised_by_the_next_request() -> None:
    cache: StateCache[str] = StateCache()
    release = threading.Event()

    def broken() -> str:
        release.wait(10)
        raise RuntimeError("database gone")

    assert cache.latest("q", (1,), broken, wait=0.05).value is None
    release.set()
    errors: list[str] = []

    def failed() -> bool:
        try:
            cache.latest("q", (1,), broken, wait=0.05)
        except RuntimeError as error:
            errors.append(str(error))
            return True
        time.sleep(0.05)
        return False

    assert any(failed() for _ in range(200))  # once the background thread has failed
    assert errors == ["database gone"]
    assert cache.latest("q", (1,), lambda: "back", wait=10).value == "back"
