"""Hub intake end to end: a node seals, the hub verifies, stores once and signs a receipt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from joserfc.jwk import OKPKey

from epibridge.agreements.signing import SignatureFile
from epibridge.hub.intake import RECEIPT_TYPE, HubContext, IntakeRefused, receive
from epibridge.hub.store import HubStore
from epibridge.model.agreement import Agreement
from epibridge.transport.keys import issue_certificate, verify_compact
from epibridge.transport.keystore import EncryptionKey, SigningKey
from epibridge.transport.seal import seal
from epibridge.transport.trust import Revocation
from tests.agreements import test_signing
from tests.agreements.test_signing import DAY, T0, World, _agreement, _both
from tests.hub import test_store
from tests.hub.payloads import release_parts

NOW = T0 + 2 * DAY
world = test_signing.world  # the same parties, keys and trust list as the signing tests


@dataclass
class Hub:
    world: World
    context: HubContext
    enc: EncryptionKey
    agreement: Agreement
    signatures: SignatureFile


url = test_store.url  # every intake test runs on SQLite and on PostgreSQL


@pytest.fixture
def hub(world: World, tmp_path: Path, url: str) -> Iterator[Hub]:
    private = X25519PrivateKey.generate()
    cert = issue_certificate(world.hub.root, "HUB", private.public_key(), T0 - DAY, T0 + 90 * DAY)
    world.hub.certs.append(cert)
    enc = EncryptionKey(cert, private)
    agreement = _agreement()
    signatures = _both(world, agreement)
    store = HubStore.open(url)
    context = HubContext(
        store=store,
        trust=world.trust(at=NOW - DAY),
        encryption_keys=[enc],
        signing_key=world.hub_key,
        agreements={agreement.id: (agreement, signatures)},
        spool=tmp_path / "spool",
    )
    yield Hub(world, context, enc, agreement, signatures)
    store.close()


def _seal(
    hub: Hub, tmp: Path, signer: SigningKey | None = None, name: str = "s.zip", **extra: object
) -> Path:
    key = signer or hub.world.khm_key
    parts = release_parts(tmp / f"{name}-parts", hub.agreement)
    manifest = {
        "submission_id": "11111111-2222-4333-8444-555555555555",
        "origin_country": "KHM",
        "agreement_id": hub.agreement.id,
        "agreement_sha256": hub.agreement.sha256,
        "period": {"from": "2026-01-05", "to": "2026-01-11"},
        "revision_of": None,
        "created_at": NOW.isoformat(),
        **extra,
    }
    out = tmp / name
    recipient = OKPKey.import_key(hub.enc.private_key.public_key(), {"kid": hub.enc.kid})
    seal(
        out,
        manifest,
        parts,
        OKPKey.import_key(key.private_key, {"kid": key.kid}),
        recipient,
    )
    return out


def _refused(hub: Hub, path: Path, reason: str) -> None:
    before = len(hub.context.store.submissions())
    with pytest.raises(IntakeRefused) as err:
        receive(path, hub.context, NOW)
    assert err.value.reason == reason, err.value
    assert len(hub.context.store.submissions()) == before
    assert hub.context.store.rejections()[-1].reason == reason


def test_accepted_once_with_a_signed_receipt(hub: Hub, tmp_path: Path) -> None:
    path = _seal(hub, tmp_path)
    receipt = receive(path, hub.context, NOW)
    assert receipt.status == "accepted"
    claims = verify_compact(receipt.token, hub.world.hub_key.private_key.public_key(), RECEIPT_TYPE)
    assert claims["manifest_sha256"] == receipt.manifest_sha256
    assert claims["submission_id"] == receipt.submission_id
    stored = hub.context.store.get(receipt.submission_id)
    assert stored is not None and Path(stored.stored_path).read_bytes() == path.read_bytes()
    # The same submission again (a retry, a replay) is the same submission: one copy.
    again = receive(path, hub.context, NOW + timedelta(minutes=5))
    assert again.status == "duplicate" and again.manifest_sha256 == receipt.manifest_sha256
    assert len(hub.context.store.submissions()) == 1
    # The same id with other content is refused.
    other = _seal(hub, tmp_path, name="other.zip", created_at="2026-01-08T00:00:00+00:00")
    _refused(hub, other, "submission_id_conflict")


def test_spoofed_origin_and_foreign_key(hub: Hub, tmp_path: Path) -> None:
    # Laos's own key, manifest claiming Cambodia: the key is not certified for KHM.
    path = _seal(hub, tmp_path, signer=hub.world.lao_key)
    with pytest.raises(IntakeRefused) as err:
        receive(path, hub.context, NOW)
    assert err.value.reason in {"unknown_key", "country_mismatch"}


def test_revoked_key_is_refused(hub: Hub, tmp_path: Path) -> None:
    revoked = Revocation(hub.world.khm_key.kid, NOW - DAY, "key_compromise")
    hub.context = replace(hub.context, trust=hub.world.trust(revoked=(revoked,), at=NOW - DAY))
    _refused(hub, _seal(hub, tmp_path), "revoked_key")


def test_unknown_or_mismatching_agreement(hub: Hub, tmp_path: Path) -> None:
    _refused(hub, _seal(hub, tmp_path, agreement_id="NO-SUCH"), "unknown_agreement")
    _refused(
        hub, _seal(hub, tmp_path, name="b.zip", agreement_sha256="00" * 32), "agreement_mismatch"
    )
    unsigned = replace(hub.signatures, signatures=hub.signatures.signatures[:1])
    hub.context = replace(hub.context, agreements={hub.agreement.id: (hub.agreement, unsigned)})
    _refused(hub, _seal(hub, tmp_path, name="c.zip"), "unsigned")
    hub.context = replace(
        hub.context,
        agreements={hub.agreement.id: (hub.agreement, hub.signatures)},
        is_stopped=lambda agreement_id, version: True,
    )
    _refused(hub, _seal(hub, tmp_path, name="d.zip"), "stopped")


def test_tampered_payload_and_unknown_hub_key(hub: Hub, tmp_path: Path) -> None:
    path = _seal(hub, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntakeRefused):
        receive(bad, hub.context, NOW)
    hub.context = replace(hub.context, encryption_keys=[])
    _refused(hub, path, "unknown_recipient_key")
