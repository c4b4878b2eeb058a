"""Check the hub's receipt before the node believes a submission delivered.

A receipt is a compact JWS by a hub signing key (``typ`` ``epibridge-receipt+jws``) over
``{submission_id, manifest_sha256, status, received_at, hub_kid}`` (docs/protocol.md). The
node accepts it only if the key is a hub signing key in its trust list, the signature
verifies, and it names this submission and the exact manifest the node sealed: anything
less and the item stays in the outbox, because "delivered" is a claim the node must be
able to prove later.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from epibridge.hub.intake import RECEIPT_TYPE
from epibridge.model.errors import ReasonedError
from epibridge.transport.keys import TrustError, peek, verify_compact
from epibridge.transport.trust import HUB, TrustList


class ReceiptError(ReasonedError):
    """A receipt the node cannot accept as proof of delivery."""


def verify_receipt(
    token: str,
    trust: TrustList,
    submission_id: str,
    manifest_sha256: str | None,
    now: datetime,
) -> dict[str, object]:
    """The receipt's fields if it proves the hub holds this submission; else ReceiptError."""
    try:
        header, _ = peek(token)
        key = trust.resolve(HUB, str(header.get("kid", "")), "sig", now)
    except (ValueError, TrustError) as exc:
        raise ReceiptError(
            "bad_receipt",
            f"the hub's receipt for {submission_id} is not signed by a hub key this node "
            f"trusts ({exc}); refresh the trust list and push again",
        ) from None
    assert isinstance(key, Ed25519PublicKey)  # use "sig" guarantees Ed25519
    try:
        fields = verify_compact(token, key, RECEIPT_TYPE)
    except ValueError as exc:
        raise ReceiptError(
            "bad_receipt", f"the hub's receipt for {submission_id} does not verify ({exc})"
        ) from None
    if fields.get("submission_id") != submission_id:
        raise ReceiptError(
            "receipt_mismatch",
            f"the hub's receipt is for submission {fields.get('submission_id')}, not "
            f"{submission_id}",
        )
    if manifest_sha256 is not None and fields.get("manifest_sha256") != manifest_sha256:
        raise ReceiptError(
            "receipt_mismatch",
            f"the hub's receipt for {submission_id} names another manifest than the one this "
            "node sealed: the hub holds different content under this id; tell the hub",
        )
    return fields
