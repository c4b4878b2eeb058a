"""A node's exchanges with its hub, online and offline, as the CLI runs them.

* ``push_over_http``: fetch a fresh trust list (keep the current one if the hub is out of
  reach), then send every due outbox item through ``HttpTransport``; a receipt counts
  only once it verifies (``receipts.py``).
* ``export_submission``: copy a queued sealed file for a USB stick; the item is marked
  ``sent`` and stays due, so whichever path reaches the hub first wins and the other is
  answered ``duplicate``.
* ``record_receipt``: record the receipt ``hub import`` wrote, after checking it.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from epibridge.model.errors import EpibridgeError
from epibridge.node import hub_link
from epibridge.node.http_transport import HttpTransport
from epibridge.node.outbox import Item, Outbox, PushReport
from epibridge.node.receipts import verify_receipt
from epibridge.node.state import NodeState
from epibridge.protect import state_path
from epibridge.transport.keys import TrustError, peek
from epibridge.transport.keystore import KeyStore

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ExchangeError(EpibridgeError):
    """An exchange that cannot start (no hub address, unknown submission, bad receipt file)."""


@dataclass(frozen=True)
class ExchangeReport:
    push: PushReport
    trust_serial: int | None  # a trust list fetched and accepted, if any
    trust_problem: str | None  # why none was, when the hub could not be asked


def _refresh_trust(home: Path, client: httpx.Client, url: str, now: datetime) -> int | str:
    """Fetch and install the hub's trust list: its serial, or the problem as text."""
    try:
        answer = client.get(f"{url}/v1/trust-list")
    except httpx.HTTPError as exc:
        return f"the hub did not answer ({type(exc).__name__})"
    if answer.status_code != 200:
        return f"the hub answered {answer.status_code} to the trust-list request"
    try:
        return hub_link.update_trust(home, answer.text, now).serial
    except (TrustError, hub_link.HubLinkError) as exc:
        return f"the hub's trust list was refused: {exc}"


def push_over_http(
    home: Path,
    passphrase: str,
    url: str | None,
    clock: Callable[[], datetime],
    rng: random.Random,
    client: httpx.Client | None = None,
    **options: Any,
) -> ExchangeReport:
    """``options`` go to ``HttpTransport`` (chunk_size, chunk_threshold, on_chunk)."""
    keys = KeyStore.open(home, passphrase)
    address = (url or hub_link.link(home).url or "").rstrip("/")
    if not address:
        raise ExchangeError(
            "no hub address: pass --url, set $EPIBRIDGE_HUB_URL, or join with --url"
        )
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT)
    try:
        refreshed = _refresh_trust(home, http, address, clock())
        trust = hub_link.trust(home, clock())
        with NodeState(state_path(home)) as state:
            outbox = Outbox(state)

            def check(submission_id: str, token: str) -> None:
                item = outbox.item(submission_id)
                sha = None if item is None else item.manifest_sha256
                verify_receipt(token, trust, submission_id, sha, clock())

            transport = HttpTransport(
                base_url=address,
                country=keys.country,
                signing_key=lambda: keys.signing_key(clock()),
                clock=clock,
                verify_receipt=check,
                uploads=outbox,
                client=http,
                **options,
            )
            report = outbox.push(transport, clock(), rng)
    finally:
        if own_client:
            http.close()
    return ExchangeReport(
        report,
        refreshed if isinstance(refreshed, int) else None,
        refreshed if isinstance(refreshed, str) else None,
    )


def export_submission(home: Path, submission_id: str, out: Path, now: datetime) -> Item:
    with NodeState(state_path(home)) as state:
        outbox = Outbox(state)
        item = outbox.item(submission_id)
        if item is None:
            raise ExchangeError(
                f"submission {submission_id} is not in this node's outbox; see "
                "'epibridge node status'"
            )
        if item.state in ("acknowledged", "rejected"):
            raise ExchangeError(
                f"submission {submission_id} is already {item.state}; nothing to carry"
            )
        if not item.path.is_file() or item.path.stat().st_size != item.size:
            raise ExchangeError(
                f"{item.path}: the sealed file is gone or changed; seal the release again"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        shutil.copyfile(item.path, tmp)
        tmp.replace(out)
        return outbox.mark_sent(item.submission_id, now)


def record_receipt(home: Path, file: Path, now: datetime) -> Item:
    token = file.read_text(encoding="utf-8").strip()
    try:
        submission_id = str(peek(token)[1]["submission_id"])
    except (ValueError, KeyError) as exc:
        raise ExchangeError(f"{file}: not a hub receipt ({exc})") from None
    trust = hub_link.trust(home, now)
    with NodeState(state_path(home)) as state:
        outbox = Outbox(state)
        item = outbox.item(submission_id)
        if item is None:
            raise ExchangeError(
                f"{file}: the receipt is for submission {submission_id}, which is not in this "
                "node's outbox"
            )
        verify_receipt(token, trust, submission_id, item.manifest_sha256, now)
        return outbox.acknowledge(submission_id, token, now)
