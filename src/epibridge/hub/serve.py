"""Build the running hub's app from its environment: what each uvicorn worker calls.

``epibridge hub serve --workers N`` starts N processes; each opens the hub folder, its
key store and its database itself (``EPIBRIDGE_HUB_HOME``, ``EPIBRIDGE_KEY_PASSPHRASE``,
``EPIBRIDGE_HUB_PUBLIC_URL``), and keeps its context current (``live.py``). Nothing that
must be shared lives in a process: submissions, the log, used client-assertion ids and
resumable uploads are in the database and the spool, guarded by the database and by file
locks.
"""

from __future__ import annotations

import atexit
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from epibridge.hub.app import create_app
from epibridge.hub.home import HubHome
from epibridge.hub.live import LiveContext

HOME_ENV = "EPIBRIDGE_HUB_HOME"
PASSPHRASE_ENV = "EPIBRIDGE_KEY_PASSPHRASE"
PUBLIC_URL_ENV = "EPIBRIDGE_HUB_PUBLIC_URL"


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(home: HubHome, passphrase: str, public_url: str | None) -> FastAPI:
    """The hub's app over ``home``; the database pool closes when the process exits."""
    keys = home.keys(passphrase)
    store = home.open_store()
    atexit.register(store.close)
    live = LiveContext(home, keys, store, _now)
    live()  # fail now, not at the first request, on a broken folder
    token_url = f"{public_url.rstrip('/')}/v1/token" if public_url else None
    return create_app(live, _now, token_url=token_url)


def app_from_environment() -> FastAPI:
    """The factory uvicorn workers call (``factory=True``)."""
    home = HubHome(Path(os.environ[HOME_ENV]))
    return build_app(home, os.environ[PASSPHRASE_ENV], os.environ.get(PUBLIC_URL_ENV) or None)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_local_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a hub started on this machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
