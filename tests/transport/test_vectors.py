"""The committed test vectors (tests/vectors/, docs/protocol.md) open, or fail, as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from epibridge.transport.seal import SealError, open_sealed

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
KEYS = json.loads((VECTORS / "keys.json").read_text())
EXPECTED = json.loads((VECTORS / "expected.json").read_text())
HUB = OKPKey.import_key(KEYS["hub_encryption_private"])


def resolve(country: str, kid: str) -> OKPKey:
    public = KEYS["node_signing_public"]
    if (country, kid) != ("KHM", public["kid"]):
        raise SealError("unknown_key", f"no trusted key {kid} for {country}")
    return OKPKey.import_key(public)


def test_valid_vector_opens_to_the_recorded_manifest_and_bytes(tmp_path: Path) -> None:
    opened = open_sealed(VECTORS / "valid.zip", tmp_path, HUB, resolve)
    assert opened.manifest == EXPECTED["valid.zip"]["manifest"]
    for name, path in opened.parts.items():
        assert path.read_bytes() == (VECTORS / name).read_bytes()


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n != "valid.zip"))
def test_tampered_vectors_are_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(SealError) as err:
        open_sealed(VECTORS / name, tmp_path, HUB, resolve)
    assert err.value.reason == EXPECTED[name]["reason"]
