"""Seal a protected release for the hub and put it in the outbox.

A release folder (``epibridge protect``) holds Parquet tables and the policy receipt,
whose ``files`` section gives each table's SHA-256. Before anything is signed the files
are checked against the receipt: a table edited after ``protect`` (by hand, by a script,
by a failing disk) is refused, because the node would otherwise sign data the agreement
never saw. The manifest then names the agreement and its hash, the period covered and
each part; it is signed with the node's current signing key and sealed to the hub's
current encryption key from the trust list (``transport/seal.py``).

A release is sealed once: sealing it again returns the outbox item it went into, so a
repeated command never sends the same data twice under two ids. A correction is a new
release, sealed with ``revision_of`` naming the submission it replaces.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey

from epibridge.files import sha256_file
from epibridge.model.errors import EpibridgeError
from epibridge.node.outbox import Item, Outbox
from epibridge.transport.keys import format_time
from epibridge.transport.keystore import KeyStore
from epibridge.transport.seal import canonical_manifest, seal
from epibridge.transport.trust import HUB, TrustList

RECEIPT = "receipt.json"


class ReleaseError(EpibridgeError):
    """A release folder that cannot be sealed as it is."""


@dataclass(frozen=True)
class Sealed:
    item: Item
    new: bool  # False: the release had been sealed before; this is that item


def _receipt(release: Path) -> dict[str, Any]:
    path = release / RECEIPT
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(
            f"{release}: not a release folder ({RECEIPT} is missing)\n"
            "  what to do: pass the --out folder of 'epibridge protect'"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReleaseError(f"{path}: the policy receipt cannot be read ({exc})") from None
    for key in ("release_id", "agreement", "sender", "files"):
        if key not in doc:
            raise ReleaseError(f"{path}: the policy receipt has no '{key}'; protect again")
    return doc


def _parts(release: Path, receipt: dict[str, Any]) -> list[tuple[str, Path]]:
    parts = []
    for name, facts in sorted(receipt["files"].items()):
        path = release / name
        if not path.is_file():
            raise ReleaseError(
                f"{path}: listed in the policy receipt but missing; protect the data again"
            )
        if sha256_file(path) != facts.get("sha256"):
            raise ReleaseError(
                f"{path}: changed since 'epibridge protect' wrote it (its SHA-256 is not the "
                "receipt's)\n  what to do: never edit a release; protect the data again"
            )
        parts.append((name, path))
    extra = sorted(
        p.name for p in release.iterdir() if p.name != RECEIPT and p.name not in receipt["files"]
    )
    if extra:
        raise ReleaseError(
            f"{release}: holds files the policy receipt does not list ({', '.join(extra)}); "
            "a release is sent exactly as protect wrote it: remove them"
        )
    parts.append((RECEIPT, release / RECEIPT))
    return parts


def seal_release(
    release: Path,
    keys: KeyStore,
    trust: TrustList,
    outbox: Outbox,
    folder: Path,
    now: datetime,
    revision_of: str | None = None,
) -> Sealed:
    """Seal ``release`` into ``folder/<submission_id>.zip`` and queue it in ``outbox``."""
    receipt = _receipt(release)
    release_id = str(receipt["release_id"])
    done = outbox.by_release(release_id)
    if done is not None:
        return Sealed(done, new=False)
    if receipt["sender"] != keys.country:
        raise ReleaseError(
            f"{release}: this release is {receipt['sender']}'s data, but this node's keys are "
            f"{keys.country}'s; each node seals only its own country's releases"
        )
    if revision_of is not None:
        if outbox.item(str(uuid.UUID(revision_of))) is None:
            raise ReleaseError(
                f"--revision-of {revision_of}: no such submission in this node's outbox; "
                "name the submission id the correction replaces ('epibridge node status')"
            )
        revision_of = str(uuid.UUID(revision_of))
    parts = _parts(release, receipt)
    signer = keys.signing_key(now)
    hub_key = trust.current_encryption_key(HUB, now)
    period = receipt.get("period") or {}
    submission_id = str(uuid.uuid4())
    manifest = {
        "submission_id": submission_id,
        "origin_country": keys.country,
        "agreement_id": receipt["agreement"]["id"],
        "agreement_sha256": receipt["agreement"]["sha256"],
        "release_id": release_id,
        "period": {"from": period.get("from"), "to": period.get("to")},
        "revision_of": revision_of,
        "created_at": format_time(now),
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{submission_id}.zip"
    signed = seal(
        out,
        manifest,
        parts,
        OKPKey.import_key(signer.private_key, {"kid": signer.kid}),
        OKPKey.import_key(hub_key.public_key(), {"kid": hub_key.kid}),
    )
    sha = hashlib.sha256(canonical_manifest(signed)).hexdigest()
    item = outbox.enqueue(out, submission_id, now, manifest_sha256=sha, release_id=release_id)
    return Sealed(item, new=True)
