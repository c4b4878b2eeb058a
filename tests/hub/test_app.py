"""The hub's HTTP service: token exchange, authorization and submission upload."""

from __future__ import annotations

import logging
import zipfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from epibridge.hub.app import create_app
from epibridge.hub.auth import (
    ACCESS_TOKEN_TYPE,
    CLIENT_ASSERTION_TYPE,
    client_assertion,
    issue_access_token,
)
from epibridge.hub.intake import RECEIPT_TYPE, IntakeRefused, receive
from epibridge.transport.keys import sign_compact, verify_compact
from epibridge.transport.keystore import SigningKey
from epibridge.transport.trust import Revocation
from tests.hub import test_intake
from tests.hub.test_intake import NOW, Hub, _seal

hub = test_intake.hub
world = test_intake.world
url = test_intake.url  # on SQLite and on PostgreSQL, like the store

TOKEN_URL = "http://testserver/v1/token"
SUBMISSION_ID = "11111111-2222-4333-8444-555555555555"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _client(hub: Hub, clock: Clock | None = None, max_body_bytes: int = 1 << 30) -> TestClient:
    return TestClient(create_app(hub.context, clock or Clock(NOW), max_body_bytes=max_body_bytes))


def _ask(client: TestClient, assertion: str, **fields: str) -> tuple[int, dict[str, object]]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
        **fields,
    }
    answer = client.post("/v1/token", data=form)
    return answer.status_code, answer.json()


def _token(client: TestClient, key: SigningKey, country: str, jti: str = "j1") -> str:
    status, body = _ask(client, client_assertion(key, country, TOKEN_URL, NOW, jti))
    assert status == 200, body
    return str(body["access_token"])


def _put(
    client: TestClient, path: Path, token: str | None, submission_id: str = SUBMISSION_ID
) -> httpx2.Response:
    headers = {"Content-Type": "application/zip"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.put(
        f"/v1/submissions/{submission_id}", content=path.read_bytes(), headers=headers
    )


def test_versions_need_no_token(hub: Hub) -> None:
    answer = _client(hub).get("/v1/versions")
    assert answer.status_code == 200
    assert answer.json() == {"protocol_versions": ["1"]}


def test_token_is_issued_for_a_valid_assertion(hub: Hub) -> None:
    client = _client(hub)
    status, body = _ask(client, client_assertion(hub.world.khm_key, "KHM", TOKEN_URL, NOW, "a"))
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    hub_public = hub.world.hub_key.private_key.public_key()
    claims = verify_compact(str(body["access_token"]), hub_public, ACCESS_TOKEN_TYPE)
    assert claims["sub"] == "KHM"
    assert claims["exp"] == int((NOW + timedelta(minutes=5)).timestamp())


def _refused(client: TestClient, assertion: str, status: int, reason: str) -> None:
    got, body = _ask(client, assertion)
    assert (got, body["reason"]) == (status, reason), body
    assert isinstance(body["message"], str) and body["message"]
    assert "access_token" not in body


def test_bad_assertions_are_refused(hub: Hub) -> None:
    client = _client(hub)
    khm, lao = hub.world.khm_key, hub.world.lao_key
    # Signed by Laos's key but naming Cambodia's kid: the signature does not verify.
    good = client_assertion(khm, "KHM", TOKEN_URL, NOW, "x")
    forged = sign_compact(
        {"iss": "KHM", "sub": "KHM", "aud": TOKEN_URL, "iat": 0, "exp": 0, "jti": "x"},
        lao.private_key,
        khm.kid,
        "JWT",
    )
    _refused(client, forged, 401, "invalid_client")
    head, body, _ = good.split(".")
    _refused(client, f"{head}.{body}.{forged.split('.')[2]}", 401, "invalid_client")
    _refused(
        client,
        client_assertion(khm, "KHM", "https://elsewhere/token", NOW, "b"),
        401,
        "wrong_audience",
    )
    past = NOW - timedelta(minutes=10)
    _refused(client, client_assertion(khm, "KHM", TOKEN_URL, past, "c"), 401, "expired_assertion")
    long = client_assertion(khm, "KHM", TOKEN_URL, NOW, "d", lifetime=timedelta(hours=1))
    _refused(client, long, 401, "assertion_lifetime_too_long")
    # Laos's key cannot speak for Cambodia.
    _refused(client, client_assertion(lao, "KHM", TOKEN_URL, NOW, "e"), 401, "country_mismatch")
    _refused(client, "not-a-jws", 401, "invalid_client")
    status, answer = _ask(client, good, grant_type="password")
    assert (status, answer["reason"]) == (400, "unsupported_grant_type")


def test_a_replayed_assertion_is_refused(hub: Hub) -> None:
    client = _client(hub)
    assertion = client_assertion(hub.world.khm_key, "KHM", TOKEN_URL, NOW, "once")
    assert _ask(client, assertion)[0] == 200
    _refused(client, assertion, 401, "replayed_assertion")
    # Another hub process on the same database (a second worker, a restart) refuses it too.
    _refused(_client(hub), assertion, 401, "replayed_assertion")
    # Another node may use the same jti: replay is per issuer.
    assert (
        _ask(client, client_assertion(hub.world.lao_key, "LAO", TOKEN_URL, NOW, "once"))[0] == 200
    )


def test_unknown_and_revoked_keys_are_refused(hub: Hub) -> None:
    khm = hub.world.khm_key
    stranger = hub.world.khm.new_key()  # certified, but not in the trust list the hub holds
    _refused(
        _client(hub), client_assertion(stranger, "KHM", TOKEN_URL, NOW, "u"), 401, "unknown_key"
    )
    revoked = Revocation(khm.kid, NOW - timedelta(days=1), "key_compromise")
    hub.context = replace(
        hub.context, trust=hub.world.trust(revoked=(revoked,), at=NOW - timedelta(days=1))
    )
    _refused(_client(hub), client_assertion(khm, "KHM", TOKEN_URL, NOW, "r"), 401, "revoked_key")


def test_submission_needs_a_valid_token(hub: Hub, tmp_path: Path) -> None:
    clock = Clock(NOW)
    client = _client(hub, clock)
    path = _seal(hub, tmp_path)
    for token, reason in [
        (None, "missing_token"),
        ("garbage", "invalid_token"),
        # Signed by the hub key but not an access token (a receipt's type).
        (
            sign_compact(
                {"sub": "KHM"}, hub.world.hub_key.private_key, hub.world.hub_key.kid, RECEIPT_TYPE
            ),
            "invalid_token",
        ),
        # An access token signed by a node key, not the hub's.
        (issue_access_token(hub.world.khm_key, "KHM", NOW, "t").token, "invalid_token"),
    ]:
        answer = _put(client, path, token)
        assert answer.status_code == 401, answer.json()
        assert answer.json()["reason"] == reason
        assert answer.headers["www-authenticate"] == "Bearer"
    token = _token(client, hub.world.khm_key, "KHM")
    clock.now = NOW + timedelta(minutes=5, seconds=1)
    answer = _put(client, path, token)
    assert (answer.status_code, answer.json()["reason"]) == (401, "expired_token")
    assert hub.context.store.submissions() == []


def test_submission_accepted_then_duplicate(
    hub: Hub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = _client(hub)
    path = _seal(hub, tmp_path)
    assertion = client_assertion(hub.world.khm_key, "KHM", TOKEN_URL, NOW, "happy")
    _, body = _ask(client, assertion)
    token = str(body["access_token"])
    first = _put(client, path, token)
    assert first.status_code == 201, first.json()
    answer = first.json()
    assert answer["status"] == "accepted" and answer["submission_id"] == SUBMISSION_ID
    claims = verify_compact(
        answer["receipt"], hub.world.hub_key.private_key.public_key(), RECEIPT_TYPE
    )
    assert claims["manifest_sha256"] == answer["manifest_sha256"]
    stored = hub.context.store.get(SUBMISSION_ID)
    assert stored is not None and stored.origin_country == "KHM"
    assert Path(stored.stored_path).read_bytes() == path.read_bytes()
    again = _put(client, path, token)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["manifest_sha256"] == answer["manifest_sha256"]
    assert len(hub.context.store.submissions()) == 1
    # The upload was spooled to a temporary file that is gone once answered.
    assert not list(hub.context.spool.glob(".upload-*"))
    # Secrets never reach the log.
    assert caplog.records
    for secret in (assertion, token, assertion.split(".")[2], token.split(".")[2]):
        assert secret not in caplog.text


def test_a_node_cannot_push_another_countrys_submission(hub: Hub, tmp_path: Path) -> None:
    client = _client(hub)
    token = _token(client, hub.world.lao_key, "LAO")
    answer = _put(client, _seal(hub, tmp_path), token)
    assert answer.status_code == 403
    assert answer.json()["reason"] == "token_country_mismatch"
    assert hub.context.store.submissions() == []
    assert hub.context.store.rejections()[-1].reason == "token_country_mismatch"


def test_intake_compares_expected_origin_and_id_before_storing(hub: Hub, tmp_path: Path) -> None:
    path = _seal(hub, tmp_path)
    with pytest.raises(IntakeRefused) as err:
        receive(path, hub.context, NOW, expected_origin="LAO")
    assert err.value.reason == "token_country_mismatch"
    with pytest.raises(IntakeRefused) as err:
        receive(path, hub.context, NOW, expected_submission_id="other")
    assert err.value.reason == "id_mismatch"
    assert hub.context.store.submissions() == []
    receipt = receive(
        path, hub.context, NOW, expected_origin="KHM", expected_submission_id=SUBMISSION_ID
    )
    assert receipt.status == "accepted"


def test_refused_uploads_store_nothing(hub: Hub, tmp_path: Path) -> None:
    client = _client(hub)
    token = _token(client, hub.world.khm_key, "KHM")
    path = _seal(hub, tmp_path)
    mismatched = _put(client, path, token, submission_id="99999999-2222-4333-8444-555555555555")
    assert (mismatched.status_code, mismatched.json()["reason"]) == (422, "id_mismatch")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(bytes(data))
    answer = _put(client, tampered, token)
    assert answer.status_code == 422
    reason = answer.json()["reason"]
    assert reason and answer.json()["message"]
    assert hub.context.store.rejections()[-1].reason == reason
    wrong_type = client.put(
        f"/v1/submissions/{SUBMISSION_ID}",
        content=path.read_bytes(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert (wrong_type.status_code, wrong_type.json()["reason"]) == (415, "unsupported_media_type")
    small = _client(hub, max_body_bytes=1000)
    too_large = _put(small, path, _token(small, hub.world.khm_key, "KHM", jti="s"))
    assert (too_large.status_code, too_large.json()["reason"]) == (413, "too_large")
    assert hub.context.store.submissions() == []
    assert not list(hub.context.spool.glob(".upload-*"))


def test_conflict_and_unsupported_version(hub: Hub, tmp_path: Path) -> None:
    client = _client(hub)
    token = _token(client, hub.world.khm_key, "KHM")
    assert _put(client, _seal(hub, tmp_path), token).status_code == 201
    other = _seal(hub, tmp_path, name="other.zip", created_at="2026-01-08T00:00:00+00:00")
    conflict = _put(client, other, token)
    assert (conflict.status_code, conflict.json()["reason"]) == (409, "submission_id_conflict")
    future = tmp_path / "v2.zip"
    with zipfile.ZipFile(other) as src, zipfile.ZipFile(future, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "protocol":
                data = b"epibridge-sealed-submission/2\n"
            out.writestr(item, data)
    answer = _put(client, future, token)
    assert (answer.status_code, answer.json()["reason"]) == (422, "unsupported_version")
    assert answer.json()["protocol_versions"] == ["1"]
    assert "accepted: 1" in answer.json()["message"]
    assert len(hub.context.store.submissions()) == 1
