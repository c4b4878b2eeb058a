"""Scorecards kept per state of the hub's submissions, computed once, in the background
for the dashboard.

Scoring every cell takes the database tens of seconds at regional scale (49 s for 2.6
million cells on SQLite), and the answer changes only when a submission arrives. So:

* ``state`` says what scorecards at a moment depend on: the submissions received by then
  (their number and the latest time) and the last row ids of the regional tables; rows
  are only ever added, so two moments with the same state have the same scorecards;
* ``cached`` computes a state's value once, however many requests ask at the same time
  (the others wait for the first), and keeps the last ``SIZE`` states;
* ``latest`` serves a page that must answer within a second: the value of the current
  state when it is ready (or becomes ready within ``wait`` seconds), otherwise it leaves
  the computation running in a background thread and returns the newest value it holds
  for the same question, older than the current state, saying since when the new one
  has been computing. The page shows which moment its figures are from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, func, select

from epibridge.hub.tables import REGIONAL_TABLES, submissions_table

T = TypeVar("T")
SIZE = 8
_log = logging.getLogger(__name__)


def state(engine: Engine, at: datetime) -> tuple[Any, ...]:
    """What values computed from the hub's submissions at ``at`` depend on: the database,
    the number of submissions received by ``at`` and the latest of their times, and the
    last row ids of the regional tables (rows written by other means)."""
    s = submissions_table
    with engine.connect() as c:
        number, latest = c.execute(
            select(func.count(), func.max(s.c.received_at)).where(s.c.received_at <= at)
        ).one()
        rows = tuple(c.execute(select(func.max(t.c.row_id))).scalar_one() for t in REGIONAL_TABLES)
    return (engine.url.render_as_string(hide_password=True), int(number), latest, rows)


@dataclass(frozen=True)
class Latest(Generic[T]):
    """What ``latest`` could give: ``value`` (None when nothing is held yet), whether it
    is the current state's (``current``), and when the current state's computation began
    (``computing_since``, None when not computing)."""

    value: T | None
    current: bool
    computing_since: float | None


class StateCache(Generic[T]):
    """Values by (question, state), newest last; one computation per key at a time."""

    def __init__(self, size: int = SIZE) -> None:
        self._values: OrderedDict[tuple[Hashable, tuple[Any, ...]], T] = OrderedDict()
        self._running: dict[tuple[Hashable, tuple[Any, ...]], tuple[threading.Event, float]] = {}
        self._failed: dict[tuple[Hashable, tuple[Any, ...]], BaseException] = {}
        self._lock = threading.Lock()
        self._size = size

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._failed.clear()

    def cached(self, question: Hashable, now: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """The value for ``question`` at state ``now``, computed by ``compute`` once."""
        key = (question, now)
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
                running = self._running.get(key)
                if running is None:
                    self._failed.pop(key, None)
                    self._running[key] = (threading.Event(), time.monotonic())
                    break
            running[0].wait()  # another request computes it; then read it (or retry)
        try:
            value = compute()
        finally:
            with self._lock:
                event, _ = self._running.pop(key)
            event.set()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value

    def latest(
        self, question: Hashable, now: tuple[Any, ...], compute: Callable[[], T], wait: float
    ) -> Latest[T]:
        """The value at state ``now`` if it is held or ready within ``wait`` seconds; else
        the newest value held for ``question`` while a background thread computes it. A
        failure of the background computation is raised by the next call."""
        key = (question, now)
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return Latest(self._values[key], True, None)
            failed = self._failed.pop(key, None)
            if failed is not None:
                raise failed
            if key not in self._running:
                threading.Thread(
                    target=self._background, args=(question, now, compute), daemon=True
                ).start()
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if key in self._values:
                    return Latest(self._values[key], True, None)
                running = self._running.get(key)
                if running is None and key in self._failed:
                    raise self._failed.pop(key)
                older = [v for (q, _), v in self._values.items() if q == question]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                since = running[1] if running is not None else time.monotonic()
                return Latest(older[-1] if older else None, False, since)
            if running is not None:
                running[0].wait(min(remaining, 0.05))
            else:
                time.sleep(min(remaining, 0.01))  # the thread has not registered yet

    def _background(
        self, question: Hashable, now: tuple[Any, ...], compute: Callable[[], T]
    ) -> None:
        try:
            self.cached(question, now, compute)
        except Exception as error:  # kept for the next request, which raises it
            _log.exception("computing in the background failed")
            with self._lock:
                self._failed[(question, now)] = error
