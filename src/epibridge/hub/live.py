"""The intake context of a running hub, kept current without a restart.

A hub serves for months while countries rotate keys, new agreements are registered and
trust lists are re-issued. ``LiveContext`` rebuilds the ``HubContext`` when a file it
depends on changes (the trust list, an enrolment, an agreement, a stop, the hub's own key
store) and at least every ``refresh`` seconds, so that a trust list is re-published
before it goes stale and a revocation takes effect at once. The database connection pool
is kept across rebuilds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from epibridge.hub.home import TRUST_LIST, HubHome
from epibridge.hub.intake import HubContext
from epibridge.hub.store import HubStore
from epibridge.transport.keystore import KeyStore


class LiveContext:
    """Call it for the current ``HubContext``; thread-safe."""

    def __init__(
        self,
        home: HubHome,
        keys: KeyStore,
        store: HubStore,
        clock: Callable[[], datetime],
        refresh: timedelta = timedelta(minutes=1),
    ) -> None:
        self._home = home
        self._keys = keys
        self._store = store
        self._clock = clock
        self._refresh = refresh
        self._lock = threading.Lock()
        self._stamp: tuple[float, ...] = ()
        self._built: datetime | None = None
        self._context: HubContext | None = None

    def _watched(self) -> list[Path]:
        folder = self._home.folder
        return [
            folder / TRUST_LIST,
            folder / "parties",
            folder / "agreements",
            *sorted((folder / "agreements").glob("*")),
            folder / "keys" / "store.json",
        ]

    def _fingerprint(self) -> tuple[float, ...]:
        stamps = []
        for path in self._watched():
            try:
                stamps.append(path.stat().st_mtime)
            except FileNotFoundError:
                stamps.append(-1.0)
        return tuple(stamps)

    def __call__(self) -> HubContext:
        now = self._clock()
        with self._lock:
            stamp = self._fingerprint()
            stale = self._built is None or now - self._built >= self._refresh
            if self._context is None or stale or stamp != self._stamp:
                if stamp != self._stamp and self._stamp:
                    self._keys = self._keys.reloaded()
                self._context = self._home.context(self._keys, now, self._store)
                self._stamp = self._fingerprint()  # the context may have re-published
                self._built = now
            return self._context
