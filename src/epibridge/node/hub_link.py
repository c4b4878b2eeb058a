"""The node's link to its hub: the hub's address, its pinned root key, the current trust list.

Kept in ``<node home>/hub/``::

    hub.json         {"url": ..., "root": <hub root public JWK>}  (written by 'node join')
    trust-list.jws   the newest trust list accepted

The hub root is pinned once, when the node joins, from a file the hub operator handed
over (its key bundle) and whose root kid was compared out of band. From then on every
trust list, however it arrives (HTTP, USB stick), must be signed by a key that root
certified, be fresh, and never roll back to an older serial (``transport/trust.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from epibridge.model.errors import EpibridgeError
from epibridge.transport.bundle import read_bundle
from epibridge.transport.keys import TrustError, thumbprint
from epibridge.transport.trust import HUB, TrustList, verify_trust_list


class HubLinkError(EpibridgeError):
    """The node has not joined a hub, or its link files are damaged."""


@dataclass(frozen=True)
class HubLink:
    url: str | None  # None for a node that exchanges files only
    root: dict[str, str]

    @property
    def root_kid(self) -> str:
        return thumbprint(self.root)


def _folder(home: Path) -> Path:
    return home / "hub"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def join(
    home: Path, hub_keys: Path, trust_list: str, now: datetime, url: str | None = None
) -> tuple[HubLink, TrustList]:
    """Pin the hub root from its key bundle and accept a first trust list signed under it."""
    bundle = read_bundle(hub_keys)
    if bundle.country != HUB:
        raise HubLinkError(
            f"{hub_keys}: this is the key bundle of {bundle.country}, not of the hub\n"
            "  what to do: ask the hub operator for the file 'epibridge keys export' writes "
            "in the hub's home"
        )
    link = HubLink(url.rstrip("/") if url else None, dict(bundle.root))
    try:
        trust = verify_trust_list(trust_list.strip(), link.root, now)
    except TrustError as exc:
        raise HubLinkError(f"the hub's trust list does not verify under its root: {exc}") from None
    known = _read_link(home)
    if known is not None and known.root_kid != link.root_kid:
        raise HubLinkError(
            f"this node already trusts hub root {known.root_kid}, not {link.root_kid}\n"
            "  what to do: a hub root changes only by a decision made out of band; remove "
            f"{_folder(home) / 'hub.json'} once that decision is confirmed, then join again"
        )
    _write(_folder(home) / "hub.json", json.dumps({"url": link.url, "root": link.root}) + "\n")
    _write(_folder(home) / "trust-list.jws", trust.token + "\n")
    return link, trust


def _read_link(home: Path) -> HubLink | None:
    path = _folder(home) / "hub.json"
    if not path.exists():
        return None
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return HubLink(doc.get("url"), {str(k): str(v) for k, v in doc["root"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HubLinkError(f"{path}: damaged ({exc}); join the hub again") from None


def link(home: Path) -> HubLink:
    """The hub this node has joined."""
    found = _read_link(home)
    if found is None:
        raise HubLinkError(
            f"{home}: this node has not joined a hub\n"
            "  what to do: run 'epibridge node join --hub-keys HUB-KEYS.json --trust-list "
            "FILE' (and --url for pushes over the network)"
        )
    return found


def trust(home: Path, now: datetime) -> TrustList:
    """The trust list last accepted, checked again (signature, freshness) at ``now``."""
    hub = link(home)
    path = _folder(home) / "trust-list.jws"
    try:
        token = path.read_text(encoding="utf-8").strip()
        return verify_trust_list(token, hub.root, now)
    except FileNotFoundError:
        raise HubLinkError(f"{path}: missing; join the hub again") from None
    except TrustError as exc:
        raise HubLinkError(
            f"{path}: {exc}\n  what to do: fetch a fresh trust list from the hub "
            "('epibridge node push' does it over the network; 'node trust FILE' from a file)"
        ) from None


def update_trust(home: Path, token: str, now: datetime) -> TrustList:
    """Accept a newer trust list (same or higher serial, signed under the pinned root)."""
    hub = link(home)
    path = _folder(home) / "trust-list.jws"
    previous = None
    if path.exists():
        try:
            previous = verify_trust_list(path.read_text(encoding="utf-8").strip(), hub.root, now)
        except TrustError:
            previous = None  # stale: any valid, newer list replaces it
            old_serial = _serial_of(path)
        else:
            old_serial = previous.serial
    else:
        old_serial = -1
    accepted = verify_trust_list(token.strip(), hub.root, now, previous)
    if accepted.serial < old_serial:
        raise HubLinkError(
            f"trust list #{accepted.serial} is older than #{old_serial}; keep the newer one"
        )
    _write(path, accepted.token + "\n")
    return accepted


def _serial_of(path: Path) -> int:
    from epibridge.transport.keys import peek

    try:
        return int(peek(path.read_text(encoding="utf-8").strip())[1]["serial"])
    except (ValueError, KeyError, TypeError):
        return -1
