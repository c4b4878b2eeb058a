"""Sealed submissions: round trip, and rejection of every kind of tampering."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from epibridge.transport.seal import SealError, open_sealed, protocol_version, seal

NODE = OKPKey.generate_key("Ed25519", parameters={"kid": "khm-sig-1"})
OTHER = OKPKey.generate_key("Ed25519", parameters={"kid": "lao-sig-1"})
HUB = OKPKey.generate_key("X25519", parameters={"kid": "hub-enc-1"})
HUB_PUBLIC = OKPKey.import_key(HUB.as_dict(private=False))
KEYS = {("KHM", "khm-sig-1"): NODE, ("LAO", "lao-sig-1"): OTHER}


def resolve(country: str, kid: str) -> OKPKey:
    """A trust list in miniature: a kid is trusted for its own country only."""
    key = KEYS.get((country, kid))
    if key is None:
        raise SealError("unknown_key", f"no trusted key {kid} for {country}")
    return OKPKey.import_key(key.as_dict(private=False))


def _manifest(**extra: object) -> dict[str, object]:
    return {
        "submission_id": "4b7c0e3e-0000-4000-8000-000000000001",
        "origin_country": "KHM",
        "agreement_id": "KHM-HUB-DENGUE-COUNTS",
        "agreement_sha256": "ab" * 32,
        "period": {"from": "2025-01-06", "to": "2025-03-30"},
        "revision_of": None,
        "created_at": "2026-11-23T12:00:00+00:00",
        **extra,
    }


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    (tmp_path / "counts.parquet").write_bytes(os.urandom(3 * (1 << 20) + 17))
    (tmp_path / "receipt.json").write_text('{"receipt_version": 1}')
    out = tmp_path / "submission.zip"
    parts = [
        ("counts.parquet", tmp_path / "counts.parquet"),
        ("receipt.json", tmp_path / "receipt.json"),
    ]
    seal(out, _manifest(), parts, NODE, HUB_PUBLIC)
    return out


def test_round_trip(sealed: Path, tmp_path: Path) -> None:
    opened = open_sealed(sealed, tmp_path / "open", HUB, resolve)
    assert opened.manifest["origin_country"] == "KHM" and opened.signer_kid == "khm-sig-1"
    assert opened.manifest["recipient_kid"] == "hub-enc-1"
    assert [p["name"] for p in opened.manifest["parts"]] == ["counts.parquet", "receipt.json"]
    for name, path in opened.parts.items():
        assert path.read_bytes() == (tmp_path / name).read_bytes()
    assert len(opened.manifest_sha256) == 64
    assert protocol_version(sealed) == "1"
    # No plaintext in the file: the payload's bytes do not appear in it.
    assert (tmp_path / "counts.parquet").read_bytes()[:4096] not in sealed.read_bytes()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _rewrite(path: Path, members: dict[str, bytes]) -> None:
    """Write members back with fresh CRCs: tampering the container cannot catch."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize(
    ("member", "where"),
    [
        ("envelope.jwe", 0.01),  # protected header
        ("envelope.jwe", 0.2),  # encrypted key
        ("envelope.jwe", 0.5),  # ciphertext (signed manifest, stream key)
        ("envelope.jwe", 0.999),  # tag
        ("parts/counts.parquet.tink", 0.0),  # stream header
        ("parts/counts.parquet.tink", 0.5),  # a middle segment
        ("parts/counts.parquet.tink", 1.0),  # the last tag
        ("parts/receipt.json.tink", 0.5),
    ],
)
def test_flipped_bytes_are_rejected(
    sealed: Path, tmp_path: Path, member: str, where: float
) -> None:
    members = _members(sealed)
    data = bytearray(members[member])
    # Not the last character of a base64url segment: its low bits may be unused padding, so
    # changing them can leave the decoded bytes as they were.
    i = min(len(data) - (3 if member.endswith(".jwe") else 1), int(len(data) * where))
    data[i] ^= 0x01 if member.endswith(".jwe") and data[i] in b".-_" else 0x55
    members[member] = bytes(data)
    _rewrite(sealed, members)
    with pytest.raises(SealError) as err:
        open_sealed(sealed, tmp_path / "open", HUB, resolve)
    assert err.value.reason in {"bad_envelope", "payload_mismatch", "bad_manifest"}
    assert not any(p.suffix == ".partial" for p in (tmp_path / "open").glob("*"))


def test_raw_byte_flips_anywhere_are_rejected(sealed: Path, tmp_path: Path) -> None:
    data = sealed.read_bytes()
    for fraction in (0.001, 0.1, 0.3, 0.6, 0.9, 0.999):
        flipped = bytearray(data)
        flipped[int(len(data) * fraction)] ^= 0xFF
        bad = tmp_path / f"bad-{fraction}.zip"
        bad.write_bytes(bytes(flipped))
        with pytest.raises(SealError):
            open_sealed(bad, tmp_path / f"open-{fraction}", HUB, resolve)


def test_truncated_swapped_and_extra_parts(sealed: Path, tmp_path: Path) -> None:
    members = _members(sealed)
    cut = dict(members)
    cut["parts/counts.parquet.tink"] = cut["parts/counts.parquet.tink"][: -(1 << 20)]
    _rewrite(sealed, cut)
    with pytest.raises(SealError, match=r"counts\.parquet"):
        open_sealed(sealed, tmp_path / "a", HUB, resolve)
    swapped = dict(members)
    swapped["parts/counts.parquet.tink"], swapped["parts/receipt.json.tink"] = (
        members["parts/receipt.json.tink"],
        members["parts/counts.parquet.tink"],
    )
    _rewrite(sealed, swapped)
    with pytest.raises(SealError, match="fails authentication"):
        open_sealed(sealed, tmp_path / "b", HUB, resolve)
    _rewrite(sealed, {**members, "parts/extra.tink": b"x"})
    with pytest.raises(SealError) as err:
        open_sealed(sealed, tmp_path / "c", HUB, resolve)
    assert err.value.reason == "member_mismatch"


def test_spoofed_origin_and_unknown_signer(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"data")
    # Laos's key signs a manifest claiming Cambodia: the resolver refuses the pair.
    spoof = tmp_path / "spoof.zip"
    seal(spoof, _manifest(), [("p", tmp_path / "p")], OTHER, HUB_PUBLIC)
    with pytest.raises(SealError) as err:
        open_sealed(spoof, tmp_path / "o", HUB, resolve)
    assert err.value.reason == "unknown_key"
    # A key that claims a trusted kid but is not that key: the signature fails.
    impostor = OKPKey.generate_key("Ed25519", parameters={"kid": "khm-sig-1"})
    forged = tmp_path / "forged.zip"
    seal(forged, _manifest(), [("p", tmp_path / "p")], impostor, HUB_PUBLIC)
    with pytest.raises(SealError) as err:
        open_sealed(forged, tmp_path / "o2", HUB, resolve)
    assert err.value.reason == "bad_signature"


def test_wrong_hub_key_and_version(sealed: Path, tmp_path: Path) -> None:
    other_hub = OKPKey.generate_key("X25519", parameters={"kid": "hub-enc-2"})
    with pytest.raises(SealError) as err:
        open_sealed(sealed, tmp_path / "o", other_hub, resolve)
    assert err.value.reason == "bad_envelope"
    members = _members(sealed)
    _rewrite(sealed, {**members, "protocol": b"epibridge-sealed-submission/9\n"})
    with pytest.raises(SealError) as err:
        open_sealed(sealed, tmp_path / "o3", HUB, resolve)
    assert err.value.reason == "unsupported_version" and "accepted: 1" in str(err.value)
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"hello")
    with pytest.raises(SealError) as err:
        open_sealed(not_zip, tmp_path / "o4", HUB, resolve)
    assert err.value.reason == "not_a_submission"


def test_part_names_cannot_escape(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"data")
    with pytest.raises(SealError) as err:
        seal(tmp_path / "s.zip", _manifest(), [("../evil", tmp_path / "p")], NODE, HUB_PUBLIC)
    assert err.value.reason == "bad_part_name"
    assert not (tmp_path / "s.zip").exists() and not (tmp_path / "s.zip.partial").exists()
