"""Keyed pseudonyms for case identifiers (HMAC-SHA256), one key per agreement.

The node holds one secret master key (``node.secrets``); each agreement gets its own
pseudonym key derived from it with HKDF-SHA256 (RFC 5869), so the same case has the same
pseudonym in every release under one agreement (a hub can follow revisions) but unlinkable
pseudonyms under two agreements. An agreement that allows record linkage derives its key
from the sending country instead, shared by every linkage-allowing agreement of the node.
Keys are bytes passed in by the shell: nothing here reads them, prints them or stores them.
"""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from epibridge.model.agreement import Agreement

_INFO = b"epibridge pseudonym key v1|"


def key_scope(agreement: Agreement) -> str:
    """What the pseudonym key is bound to: the agreement, or the country when linkage is allowed."""
    if agreement.record_linkage:
        return f"linkage:{agreement.sender}"
    return f"agreement:{agreement.sender}:{agreement.id}"


def derive_key(master: bytes, agreement: Agreement) -> bytes:
    """The agreement's 32-byte pseudonym key, derived from the node's master key."""
    if len(master) < 32:
        raise ValueError("the pseudonym master key must be at least 32 bytes")
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + key_scope(agreement).encode()
    )
    return hkdf.derive(master)


def pseudonymize(ids: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """HMAC-SHA256 of each identifier (UTF-8), as 64 hex digits; nulls stay null.

    A Python loop over the values: neither DuckDB nor Arrow computes an HMAC, and putting
    the key into an engine expression would put it in query text that can reach logs.
    """
    values = ids.to_pylist()
    out = [
        None if v is None else hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()
        for v in values
    ]
    return pa.array(out, pa.string())
