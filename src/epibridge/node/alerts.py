"""A node's alerts from the hub: fetched, checked, kept, acknowledged.

The node pulls ``GET /v1/alerts/inbox`` (the hub marks what it hands over as delivered).
Each alert is a compact JWS by a hub signing key (``typ`` ``epibridge-alert+jws``, see
``hub/alert_store.py``); the node accepts it only if the key is a hub signing key of its
own trust list and the signature verifies, exactly as it checks receipts. An alert that
fails is refused and reported, never kept. Accepted ones are kept as they came, one file
per alert in ``<home>/alerts/<alert_id>.jws`` (a newer document of the same alert replaces
the older), so anyone can re-check them later.

Acknowledging (``acknowledge``) tells the hub who read the alert
(``POST /v1/alerts/{id}/ack``) and keeps that answer beside it
(``<alert_id>.ack.json``): the hub stops escalating it for this country.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from epibridge.hub.alert_store import ALERT_TYPE
from epibridge.model.errors import EpibridgeError, ReasonedError
from epibridge.node import hub_link
from epibridge.node.http_transport import HttpTransport, UploadMemory
from epibridge.transport.keys import TrustError, format_time, peek, verify_compact
from epibridge.transport.keystore import KeyStore
from epibridge.transport.trust import HUB, TrustList

FOLDER = "alerts"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class AlertDocumentError(ReasonedError):
    """An alert document the node cannot accept (not signed by a hub key it trusts)."""


class Requester(Protocol):
    """What the node needs of its HTTP link (``HttpTransport.request``)."""

    def request(self, method: str, path: str, **options: Any) -> httpx.Response: ...


@dataclass(frozen=True)
class NodeAlert:
    alert_id: str
    alert: dict[str, Any]  # the alert's state as the hub signed it
    issued_at: str
    token: str
    acknowledged: dict[str, Any] | None  # what the hub answered to our acknowledgement


def verify_alert(token: str, trust: TrustList, now: datetime) -> dict[str, Any]:
    """The signed payload (``alert``, ``issued_at``, ``hub_kid``) if a hub key of ``trust``
    signed it; else ``AlertDocumentError``."""
    try:
        header, _ = peek(token)
        key = trust.resolve(HUB, str(header.get("kid", "")), "sig", now)
    except (ValueError, TrustError) as exc:
        raise AlertDocumentError(
            "bad_alert",
            f"the alert is not signed by a hub key this node trusts ({exc}); refresh the "
            "trust list and fetch again",
        ) from None
    assert isinstance(key, Ed25519PublicKey)  # use "sig" guarantees Ed25519
    try:
        payload = verify_compact(token, key, ALERT_TYPE)
    except ValueError as exc:
        raise AlertDocumentError("bad_alert", f"the alert does not verify ({exc})") from None
    alert = payload.get("alert")
    if not isinstance(alert, dict) or not _SAFE_ID.match(str(alert.get("alert_id", ""))):
        raise AlertDocumentError("bad_alert", "the signed document holds no valid alert")
    return payload


def _folder(home: Path) -> Path:
    return home / FOLDER


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def store_alert(home: Path, token: str, trust: TrustList, now: datetime) -> NodeAlert:
    """Verify ``token`` and keep it (replacing an older document of the same alert)."""
    payload = verify_alert(token, trust, now)
    alert_id = str(payload["alert"]["alert_id"])
    _write(_folder(home) / f"{alert_id}.jws", token + "\n")
    return _read(home, alert_id)


def _read(home: Path, alert_id: str) -> NodeAlert:
    token = (_folder(home) / f"{alert_id}.jws").read_text(encoding="utf-8").strip()
    payload = peek(token)[1]  # verified before it was written
    ack_path = _folder(home) / f"{alert_id}.ack.json"
    ack = json.loads(ack_path.read_text(encoding="utf-8")) if ack_path.exists() else None
    return NodeAlert(alert_id, payload["alert"], str(payload.get("issued_at", "")), token, ack)


def list_alerts(home: Path) -> list[NodeAlert]:
    """The alerts this node keeps, latest weeks first."""
    folder = _folder(home)
    if not folder.exists():
        return []
    found = [_read(home, p.name.removesuffix(".jws")) for p in folder.glob("*.jws")]
    return sorted(found, key=lambda a: (str(a.alert.get("last_week")), a.alert_id), reverse=True)


@dataclass
class PullReport:
    kept: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "<alert id>: why"


def _body(answer: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200 or not isinstance(body, dict):
        reason = body.get("message") if isinstance(body, dict) else answer.text[:200]
        raise EpibridgeError(f"the hub answered {answer.status_code} to {what}: {reason}")
    return body


def pull(home: Path, hub: Requester, trust: TrustList, now: datetime) -> PullReport:
    """Fetch the inbox and keep every alert that verifies; report those that do not."""
    body = _body(hub.request("GET", "/v1/alerts/inbox"), "the alerts inbox")
    report = PullReport()
    for item in body.get("alerts", []):
        named = str(item.get("alert_id", "?")) if isinstance(item, dict) else "?"
        try:
            kept = store_alert(home, str(item.get("document", "")), trust, now)
        except AlertDocumentError as exc:
            report.refused.append(f"{named}: {exc.message}")
            continue
        report.kept.append(kept.alert_id)
    return report


def acknowledge(home: Path, hub: Requester, alert_id: str, by: str, now: datetime) -> NodeAlert:
    """Tell the hub ``by`` read the alert, and keep its answer beside the alert."""
    if not (_folder(home) / f"{alert_id}.jws").exists():
        raise EpibridgeError(
            f"this node holds no alert {alert_id!r}: fetch the inbox with 'epibridge node alerts'"
        )
    body = _body(
        hub.request("POST", f"/v1/alerts/{alert_id}/ack", json={"by": by}), "the acknowledgement"
    )
    record = {"by": by, "sent_at": format_time(now.replace(microsecond=0)), "hub": body}
    _write(_folder(home) / f"{alert_id}.ack.json", json.dumps(record, indent=2) + "\n")
    return _read(home, alert_id)


class _NoUploads(UploadMemory):
    def get_upload(self, submission_id: str) -> str | None:
        return None

    def set_upload(self, submission_id: str, upload_id: str | None) -> None:
        return None


def hub_transport(
    home: Path,
    passphrase: str,
    url: str | None,
    clock: Callable[[], datetime],
    client: httpx.Client | None = None,
) -> HttpTransport:
    """An authorized link to the hub with the node's own key (as ``node audit`` makes)."""
    keys = KeyStore.open(home, passphrase)
    address = (url or hub_link.link(home).url or "").rstrip("/")
    if not address:
        raise EpibridgeError("no hub address: pass --url or join with --url")
    return HttpTransport(
        base_url=address,
        country=keys.country,
        signing_key=lambda: keys.signing_key(clock()),
        clock=clock,
        verify_receipt=lambda sid, token: None,
        uploads=_NoUploads(),
        client=client,
    )
