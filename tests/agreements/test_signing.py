"""Agreement signatures: both parties sign the hash; the hub refuses anything less."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from epibridge.agreements import parse_agreement
from epibridge.agreements.signing import (
    SIGNATURE_TYPE,
    AgreementRefused,
    SignatureFile,
    load_signatures,
    parties,
    save_signatures,
    sign_agreement,
    signatures_path,
    verify_agreement,
)
from epibridge.model.agreement import Agreement
from epibridge.transport import keys
from epibridge.transport.keys import KeyCertificate, format_time, issue_certificate, public_jwk
from epibridge.transport.keystore import SigningKey
from epibridge.transport.trust import (
    HUB,
    Revocation,
    TrustList,
    issue_trust_list,
    verify_trust_list,
)

EXAMPLE = Path(str(resources.files("epibridge.examples") / "agreements")) / "khm-hub-counts.toml"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Party:
    """A country or the hub: a root and the signing keys it certified."""

    country: str
    root: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    certs: list[KeyCertificate] = field(default_factory=list)

    def new_key(self, start: datetime = T0 - DAY, days: int = 90) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        cert = issue_certificate(
            self.root, self.country, private.public_key(), start, start + days * DAY
        )
        self.certs.append(cert)
        return SigningKey(cert, private)


@dataclass
class World:
    hub: Party
    khm: Party
    lao: Party
    hub_key: SigningKey
    khm_key: SigningKey
    lao_key: SigningKey
    #: Signs trust lists; long-lived so that lists can be issued at any time a test needs.
    list_key: SigningKey

    def trust(self, revoked: tuple[Revocation, ...] = (), at: datetime = T0) -> TrustList:
        """A trust list issued at ``at`` holding every party's root and certificates."""
        token = issue_trust_list(
            self.list_key.private_key,
            self.list_key.certificate,
            1,
            at,
            at + 7 * DAY,
            {p.country: public_jwk(p.root.public_key()) for p in (self.hub, self.khm, self.lao)},
            [c.token for p in (self.hub, self.khm, self.lao) for c in p.certs],
            revoked,
        )
        return verify_trust_list(token, public_jwk(self.hub.root.public_key()), at)


@pytest.fixture
def world() -> World:
    hub, khm, lao = Party(HUB), Party("KHM"), Party("LAO")
    lister = hub.new_key(start=T0 - 3650 * DAY, days=3 * 3650)
    return World(hub, khm, lao, hub.new_key(), khm.new_key(), lao.new_key(), lister)


def _text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def _agreement(text: str | None = None) -> Agreement:
    return parse_agreement(_text() if text is None else text, EXAMPLE)


def _both(world: World, agreement: Agreement, at: datetime = T0) -> SignatureFile:
    sf = sign_agreement(agreement, world.khm_key, "KHM", at)
    return sign_agreement(agreement, world.hub_key, HUB, at + timedelta(hours=1), sf)


def _refused(
    agreement: Agreement,
    sf: SignatureFile,
    trust: TrustList,
    at: datetime = T0 + DAY,
    stopped: bool = False,
) -> AgreementRefused:
    with pytest.raises(AgreementRefused) as caught:
        verify_agreement(agreement, sf, trust, at, stopped)
    return caught.value


def test_signed_by_both_is_accepted(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    assert parties(agreement) == ("KHM", HUB)
    assert [s.country for s in sf.signatures] == ["HUB", "KHM"]
    assert (sf.agreement_id, sf.version, sf.sha256) == (
        agreement.id,
        agreement.version,
        agreement.sha256,
    )
    verify_agreement(agreement, sf, world.trust(), T0 + DAY)


def test_signature_payload_is_the_canonical_statement(world: World) -> None:
    agreement = _agreement()
    sig = sign_agreement(agreement, world.khm_key, "KHM", T0).signatures[0]
    header, payload = keys.peek(sig.jws)
    assert header == {"alg": "Ed25519", "kid": world.khm_key.kid, "typ": SIGNATURE_TYPE}
    assert payload == {
        "agreement_id": "KHM-HUB-DENGUE-COUNTS",
        "version": "1",
        "sha256": agreement.sha256,
        "signer_country": "KHM",
        "signed_at": "2026-01-05T08:00:00Z",
    }
    assert keys.b64url_decode(sig.jws.split(".")[1]) == keys.canonical_json(payload)


def test_only_the_node_signed_is_unsigned(world: World) -> None:
    agreement = _agreement()
    sf = sign_agreement(agreement, world.khm_key, "KHM", T0)
    refused = _refused(agreement, sf, world.trust())
    assert refused.reason == "unsigned"
    assert "HUB" in str(refused)
    empty = replace(sf, signatures=())
    assert _refused(agreement, empty, world.trust()).reason == "unsigned"


def test_partner_agreement_needs_the_partner_not_the_hub(world: World) -> None:
    agreement = _agreement(_text().replace('recipient = "hub"', 'recipient = "LAO"'))
    assert parties(agreement) == ("KHM", "LAO")
    with_hub = _both(world, _agreement())  # a hub signature does not count here
    sf = sign_agreement(agreement, world.khm_key, "KHM", T0)
    with pytest.raises(AgreementRefused) as caught:
        sign_agreement(agreement, world.hub_key, HUB, T0, sf)
    assert caught.value.reason == "not_a_party"
    assert _refused(agreement, sf, world.trust()).reason == "unsigned"
    sf = sign_agreement(agreement, world.lao_key, "LAO", T0, sf)
    verify_agreement(agreement, sf, world.trust(), T0 + DAY)
    stray = replace(sf, signatures=(*sf.signatures, with_hub.by_country()[HUB]))
    assert _refused(agreement, stray, world.trust()).reason == "not_a_party"


def test_edit_after_signing_is_hash_mismatch(world: World) -> None:
    sf = _both(world, _agreement())
    edited = _agreement(_text().replace("k = 5", "k = 3"))
    refused = _refused(edited, sf, world.trust())
    assert refused.reason == "hash_mismatch"
    # Adding a signature to the old file after the edit is refused too.
    with pytest.raises(AgreementRefused) as caught:
        sign_agreement(edited, world.hub_key, HUB, T0, sf)
    assert caught.value.reason == "hash_mismatch"


def test_signature_on_old_text_copied_into_new_file_is_hash_mismatch(world: World) -> None:
    old = _both(world, _agreement())
    edited = _agreement(_text().replace("k = 5", "k = 3"))
    new = sign_agreement(edited, world.khm_key, "KHM", T0)
    forged = replace(new, signatures=(*new.signatures, old.by_country()[HUB]))
    assert _refused(edited, forged, world.trust()).reason == "hash_mismatch"


def test_comments_and_reordering_keep_signatures(world: World) -> None:
    text = _text()
    sf = _both(world, _agreement(text))
    head, terms = text.split("[recipient_terms]")
    reordered = (
        "# reformatted by a lawyer; same meaning\n[recipient_terms]"
        + terms.replace("retention_days = 1825", "retention_days   =   1825  # five years")
        + "\n"
        + head.replace("k = 5\n", "k = 5 # threshold\n")
    )
    assert reordered != text
    same = _agreement(reordered)
    assert same.sha256 == _agreement(text).sha256
    verify_agreement(same, sf, world.trust(), T0 + DAY)


def test_key_of_another_country_claiming_khm_is_refused(world: World) -> None:
    agreement = _agreement()
    with pytest.raises(AgreementRefused) as caught:
        sign_agreement(agreement, world.lao_key, "KHM", T0)
    assert caught.value.reason == "country_mismatch"
    # Forged by hand: LAO's key signs a statement claiming to be KHM's.
    payload = {
        "agreement_id": agreement.id,
        "version": agreement.version,
        "sha256": agreement.sha256,
        "signer_country": "KHM",
        "signed_at": format_time(T0),
    }
    token = keys.sign_compact(payload, world.lao_key.private_key, world.lao_key.kid, SIGNATURE_TYPE)
    sf = sign_agreement(agreement, world.hub_key, HUB, T0)
    forged = replace(
        sf,
        signatures=(
            *sf.signatures,
            replace(sf.signatures[0], country="KHM", kid=world.lao_key.kid, jws=token),
        ),
    )
    assert _refused(agreement, forged, world.trust()).reason == "country_mismatch"
    # Claiming KHM's kid with LAO's signature: the key resolves, the signature does not verify.
    forged_kid = replace(
        sf,
        signatures=(
            *sf.signatures,
            replace(sf.signatures[0], country="KHM", kid=world.khm_key.kid, jws=token),
        ),
    )
    assert _refused(agreement, forged_kid, world.trust()).reason == "bad_signature"


def test_key_revoked_before_signing_is_refused(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement, at=T0 + 2 * DAY)
    before = (Revocation(world.khm_key.kid, T0 + DAY, "key_compromise"),)
    refused = _refused(agreement, sf, world.trust(before), at=T0 + 3 * DAY)
    assert refused.reason == "revoked_key"
    assert world.khm_key.kid in str(refused)
    # Revoked after it signed: the signature made while it was good still stands.
    after = (Revocation(world.khm_key.kid, T0 + 2 * DAY + timedelta(hours=5), "superseded"),)
    verify_agreement(agreement, sf, world.trust(after), T0 + 3 * DAY)


def test_signatures_outlive_the_keys_that_made_them(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    later = T0 + 400 * DAY  # both signing keys expired long ago
    verify_agreement(agreement, sf, world.trust(at=later), later)


def test_key_missing_from_trust_list_is_unknown(world: World) -> None:
    agreement = _agreement()
    stranger = Party("KHM", root=world.khm.root).new_key()  # certified, never sent to the hub
    sf = sign_agreement(agreement, stranger, "KHM", T0)
    sf = sign_agreement(agreement, world.hub_key, HUB, T0, sf)
    assert _refused(agreement, sf, world.trust()).reason == "unknown_key"


def test_signing_with_expired_key_is_refused(world: World) -> None:
    with pytest.raises(AgreementRefused) as caught:
        sign_agreement(_agreement(), world.khm_key, "KHM", T0 + 100 * DAY)
    assert caught.value.reason == "expired_key"


def test_future_dated_signature_is_refused(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement, at=T0 + 2 * DAY)
    assert _refused(agreement, sf, world.trust(), at=T0 + DAY).reason == "future_signature"


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (datetime(2036, 1, 1, 0, 0, tzinfo=UTC), "expired"),
        (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "not_yet_valid"),
    ],
)
def test_agreement_dates(world: World, at: datetime, reason: str) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    assert _refused(agreement, sf, world.trust(at=at), at=at).reason == reason
    last_day = datetime(2035, 12, 31, 23, 59, tzinfo=UTC)  # valid_to is inclusive
    verify_agreement(agreement, sf, world.trust(at=last_day), last_day)


def test_stopped_is_refused(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    refused = _refused(agreement, sf, world.trust(), stopped=True)
    assert refused.reason == "stopped"
    assert "KHM-HUB-DENGUE-COUNTS" in str(refused)


def test_tampered_jws_is_bad_signature(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    khm = sf.by_country()["KHM"]
    head, body, sig = khm.jws.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    other_body = sign_agreement(agreement, world.khm_key, "KHM", T0 + DAY).signatures[0]
    for token in (
        f"{head}.{body}.{flipped}",
        f"{head}.{other_body.jws.split('.')[1]}.{sig}",
        "not a token",
    ):
        bad = replace(sf, signatures=(sf.by_country()[HUB], replace(khm, jws=token)))
        assert _refused(agreement, bad, world.trust()).reason == "bad_signature"
    # A signature that verifies but whose date differs from the file's is refused too.
    moved = replace(khm, signed_at=T0 - timedelta(hours=1))
    bad = replace(sf, signatures=(sf.by_country()[HUB], moved))
    assert _refused(agreement, bad, world.trust()).reason == "bad_signature"


def test_resigning_replaces_that_party_only(world: World) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    newer = world.khm.new_key(start=T0)
    again = sign_agreement(agreement, newer, "KHM", T0 + DAY, sf)
    assert again.by_country()["KHM"].kid == newer.kid
    assert again.by_country()[HUB] == sf.by_country()[HUB]
    assert len(again.signatures) == 2
    verify_agreement(agreement, again, world.trust(at=T0 + DAY), T0 + 2 * DAY)


def test_save_and_load_round_trip(world: World, tmp_path: Path) -> None:
    agreement = _agreement()
    sf = _both(world, agreement)
    path = signatures_path(tmp_path / "khm-hub-counts.toml")
    assert path.name == "khm-hub-counts.toml.sig.json"
    save_signatures(path, sf)
    assert load_signatures(path) == sf
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["signatures"][1]["signed_at"] == "2026-01-05T08:00:00Z"
    verify_agreement(agreement, load_signatures(path), world.trust(), T0 + DAY)


def test_missing_or_malformed_file(world: World, tmp_path: Path) -> None:
    path = tmp_path / "a.toml.sig.json"
    with pytest.raises(AgreementRefused) as caught:
        load_signatures(path)
    assert caught.value.reason == "unsigned"
    sf = _both(world, _agreement())
    save_signatures(path, sf)
    doc = json.loads(path.read_text(encoding="utf-8"))
    for broken in (
        "{not json",
        json.dumps({**doc, "extra": 1}),
        json.dumps({**doc, "signatures": [doc["signatures"][0]] * 2}),
        json.dumps({**doc, "signatures": [{**doc["signatures"][0], "signed_at": "yesterday"}]}),
    ):
        path.write_text(broken, encoding="utf-8")
        with pytest.raises(AgreementRefused) as caught:
            load_signatures(path)
        assert caught.value.reason == "bad_signature_file"
        assert str(path) in str(caught.value)
