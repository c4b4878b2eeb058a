"""Write the sealed-submission test vectors in tests/vectors/ (docs/protocol.md).

The keys are test identities made for these vectors only (never use them for anything
else). Sealing is randomized (ephemeral ECDH keys, fresh stream keys), so a vector is a
sealed file plus what opening it must give: another implementation checks that it opens
``valid.zip`` to the same manifest and bytes, and rejects each ``tampered-*.zip`` with the
reason given in ``expected.json``.

    uv run python scripts/make_vectors.py
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey

from epibridge.transport.seal import seal

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    node = OKPKey.generate_key("Ed25519", parameters={"kid": "test-khm-sig-1"})
    hub = OKPKey.generate_key("X25519", parameters={"kid": "test-hub-enc-1"})
    keys = {
        "node_signing_private": node.as_dict(private=True),
        "node_signing_public": node.as_dict(private=False),
        "hub_encryption_private": hub.as_dict(private=True),
        "hub_encryption_public": hub.as_dict(private=False),
    }
    (OUT / "keys.json").write_text(json.dumps(keys, indent=2) + "\n")
    part = OUT / "payload.bin"
    part.write_bytes(bytes(range(256)) * 256 + b"end")  # 64 KiB + 3 bytes
    receipt = OUT / "receipt.json"
    receipt.write_text('{"receipt_version": 1, "note": "test vector"}\n')
    manifest = {
        "submission_id": "00000000-0000-4000-8000-00000000000a",
        "origin_country": "KHM",
        "agreement_id": "KHM-HUB-DENGUE-COUNTS",
        "agreement_sha256": hashlib.sha256(b"test agreement").hexdigest(),
        "period": {"from": "2025-01-06", "to": "2025-03-30"},
        "revision_of": None,
        "created_at": "2026-11-23T12:00:00+00:00",
    }
    hub_public = OKPKey.import_key(hub.as_dict(private=False))
    parts = [("payload.bin", part), ("receipt.json", receipt)]
    signed = seal(OUT / "valid.zip", manifest, parts, node, hub_public)
    with zipfile.ZipFile(OUT / "valid.zip") as z:
        members = {n: z.read(n) for n in z.namelist()}
    expected: dict[str, dict[str, Any]] = {"valid.zip": {"manifest": signed}}
    cases = {
        "tampered-envelope.zip": ("envelope.jwe", 40, "bad_envelope"),
        "tampered-part.zip": ("parts/payload.bin.tink", 30_000, "payload_mismatch"),
        "tampered-receipt.zip": ("parts/receipt.json.tink", 30, "payload_mismatch"),
    }
    for name, (member, offset, reason) in cases.items():
        data = bytearray(members[member])
        data[offset] ^= 0x55
        with zipfile.ZipFile(OUT / name, "w", zipfile.ZIP_STORED) as z:
            for n, d in members.items():
                z.writestr(n, bytes(data) if n == member else d)
        expected[name] = {"reason": reason}
    with zipfile.ZipFile(OUT / "unsupported-version.zip", "w", zipfile.ZIP_STORED) as z:
        for n, d in members.items():
            z.writestr(n, b"epibridge-sealed-submission/2\n" if n == "protocol" else d)
    expected["unsupported-version.zip"] = {"reason": "unsupported_version"}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {len(expected)} vectors to {OUT}")


if __name__ == "__main__":
    main()
