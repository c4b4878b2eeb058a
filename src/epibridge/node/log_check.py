"""A node checks the hub's transparency log: it never rewrote history, and holds our data.

``check_log`` asks the hub for its current signed tree head and checks, with the keys of
the node's own trust list:

* the head is signed by a hub signing key and says what the answer says;
* it extends the last head this node accepted (a consistency proof), or is that head;
* every submission the hub acknowledged to this node is a leaf of it (an inclusion
  proof), with the manifest hash this node sealed;

then countersigns the head (unless told not to) and remembers it in
``<home>/hub/tree-head.json``. Any failed check raises ``LogAlarm``: it is evidence that
the hub showed different histories to different parties, and it is kept, not retried.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from epibridge.hub.log import (
    COUNTERSIGNATURE_TYPE,
    HEAD_TYPE,
    LOG_ID,
    check_consistency,
    check_inclusion,
)
from epibridge.model.errors import EpibridgeError
from epibridge.node import hub_link
from epibridge.node.http_transport import HttpTransport
from epibridge.node.outbox import Outbox
from epibridge.node.state import NodeState
from epibridge.protect import state_path
from epibridge.transport.keys import TrustError, peek, sign_compact, verify_compact
from epibridge.transport.keystore import KeyStore
from epibridge.transport.trust import HUB


class LogAlarm(EpibridgeError):  # noqa: N818 (evidence of misbehaviour, not a bug)
    """The hub's log contradicts what it told this node before: keep the evidence."""

    exit_code = 3


@dataclass(frozen=True)
class LogCheck:
    tree_size: int
    root_hash: str
    previous_size: int | None
    included: int  # acknowledged submissions proven in the log
    countersigned: bool


def _remembered(home: Path) -> dict[str, Any] | None:
    path = home / "hub" / "tree-head.json"
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _remember(home: Path, head: dict[str, Any]) -> None:
    path = home / "hub" / "tree-head.json"
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _json(answer: httpx.Response, what: str) -> dict[str, Any]:
    if answer.status_code != 200:
        raise EpibridgeError(f"the hub answered {answer.status_code} to {what}: {answer.text}")
    body: dict[str, Any] = answer.json()
    return body


def check_log(
    home: Path,
    passphrase: str,
    url: str | None,
    clock: Callable[[], datetime],
    countersign: bool = True,
    client: httpx.Client | None = None,
) -> LogCheck:
    keys = KeyStore.open(home, passphrase)
    address = (url or hub_link.link(home).url or "").rstrip("/")
    if not address:
        raise EpibridgeError("no hub address: pass --url or join with --url")
    trust = hub_link.trust(home, clock())
    with NodeState(state_path(home)) as state:
        outbox = Outbox(state)
        items = [i for i in outbox.status() if i.state == "acknowledged"]
        transport = HttpTransport(
            base_url=address,
            country=keys.country,
            signing_key=lambda: keys.signing_key(clock()),
            clock=clock,
            verify_receipt=lambda sid, token: None,
            uploads=outbox,
            client=client,
        )
        try:
            return _check(home, keys, trust, transport, items, clock, countersign)
        finally:
            transport.close()


def _check(
    home: Path,
    keys: KeyStore,
    trust: Any,
    transport: HttpTransport,
    items: list[Any],
    clock: Callable[[], datetime],
    countersign: bool,
) -> LogCheck:
    head = _json(transport.request("GET", "/v1/log/head"), "the tree-head request")
    size, root_hash = int(head["tree_size"]), str(head["root_hash"])
    try:
        kid = str(peek(head["token"])[0].get("kid", ""))
        key = trust.resolve(HUB, kid, "sig", clock())
        assert isinstance(key, Ed25519PublicKey)
        claims = verify_compact(head["token"], key, HEAD_TYPE)
    except (TrustError, ValueError, KeyError) as exc:
        raise LogAlarm(f"the hub's tree head is not signed by a hub key ({exc})") from None
    if claims.get("tree_size") != size or claims.get("root_hash") != root_hash:
        raise LogAlarm("the hub's answer differs from the tree head it signed")
    before = _remembered(home)
    if before is not None:
        old_size, old_root = int(before["tree_size"]), str(before["root_hash"])
        if size < old_size or (size == old_size and root_hash != old_root):
            raise LogAlarm(
                f"the hub's log went from {old_size} leaves (root {old_root[:16]}...) to "
                f"{size} (root {root_hash[:16]}...): it rewrote history"
            )
        if size > old_size:
            answer = transport.request(
                "GET", "/v1/log/consistency", params={"first": old_size, "second": size}
            )
            proof = _json(answer, "the consistency request")["proof"]
            if not check_consistency((old_size, old_root), (size, root_hash), proof):
                raise LogAlarm(
                    f"the hub cannot prove that its log of {size} leaves extends the one of "
                    f"{old_size} this node saw: it rewrote history"
                )
    included = 0
    for item in items:
        answer = transport.request(
            "GET", f"/v1/log/inclusion/{item.submission_id}", params={"tree_size": size}
        )
        if answer.status_code == 404:
            raise LogAlarm(
                f"the hub acknowledged submission {item.submission_id} but its log of {size} "
                "leaves does not hold it"
            )
        found = _json(answer, "an inclusion request")
        entry = json.loads(found["entry"])
        if entry.get("submission_id") != item.submission_id or (
            item.manifest_sha256 and entry.get("manifest_sha256") != item.manifest_sha256
        ):
            raise LogAlarm(
                f"the log's leaf for {item.submission_id} names another manifest than the "
                "one this node sealed"
            )
        if not check_inclusion(
            found["entry"], int(found["leaf_index"]), root_hash, size, found["proof"]
        ):
            raise LogAlarm(f"the inclusion proof of {item.submission_id} does not verify")
        included += 1
    signed = False
    if countersign and size > 0:
        signer = keys.signing_key(clock())
        token = sign_compact(
            {"log": LOG_ID, "tree_size": size, "root_hash": root_hash, "country": keys.country},
            signer.private_key,
            signer.kid,
            COUNTERSIGNATURE_TYPE,
        )
        answer = transport.request(
            "POST", f"/v1/log/heads/{size}/countersignature", content=token.encode()
        )
        signed = answer.status_code == 201
        if not signed:
            raise EpibridgeError(
                f"the hub refused this node's countersignature ({answer.status_code}: "
                f"{answer.text})"
            )
    _remember(home, {"tree_size": size, "root_hash": root_hash, "token": head["token"]})
    return LogCheck(
        size, root_hash, None if before is None else int(before["tree_size"]), included, signed
    )
