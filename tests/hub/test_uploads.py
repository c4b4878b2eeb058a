"""Resumable uploads: a sealed file sent in pieces, across a hub restart, then taken in once."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from epibridge.hub.app import create_app
from epibridge.hub.auth import client_assertion
from epibridge.hub.uploads import UploadError, Uploads
from tests.hub import test_intake
from tests.hub.test_app import SUBMISSION_ID, TOKEN_URL, Clock, _ask, _token
from tests.hub.test_intake import NOW, Hub, _seal

hub = test_intake.hub
world = test_intake.world
url = test_intake.url  # on SQLite and on PostgreSQL, like the store

OFFSET_STREAM = "application/offset+octet-stream"


def _client(hub: Hub, clock: Clock | None = None, max_body_bytes: int = 1 << 30) -> TestClient:
    return TestClient(create_app(hub.context, clock or Clock(NOW), max_body_bytes=max_body_bytes))


def _token_at(client: TestClient, hub: Hub, at: datetime) -> str:
    assertion = client_assertion(hub.world.khm_key, "KHM", TOKEN_URL, at, at.isoformat())
    status, body = _ask(client, assertion)
    assert status == 200, body
    return str(body["access_token"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(client: TestClient, token: str, length: int) -> str:
    answer = client.post("/v1/uploads", headers={**_auth(token), "Upload-Length": str(length)})
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["offset"] == 0 and body["length"] == length
    assert answer.headers["location"] == f"/v1/uploads/{body['upload_id']}"
    return str(body["upload_id"])


def _patch(
    client: TestClient, token: str, upload_id: str, offset: int, data: bytes
) -> httpx2.Response:
    headers = {**_auth(token), "Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM}
    return client.patch(f"/v1/uploads/{upload_id}", content=data, headers=headers)


def _offset(client: TestClient, token: str, upload_id: str) -> int:
    answer = client.head(f"/v1/uploads/{upload_id}", headers=_auth(token))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    return int(answer.headers["upload-offset"])


def _finish(
    client: TestClient, token: str, upload_id: str, submission_id: str = SUBMISSION_ID
) -> httpx2.Response:
    return client.put(
        f"/v1/submissions/{submission_id}", headers={**_auth(token), "Upload-Id": upload_id}
    )


def _files(hub: Hub) -> list[Path]:
    return sorted((hub.context.spool / "uploads").glob("*"))


def test_chunked_upload_survives_a_restart(hub: Hub, tmp_path: Path) -> None:
    data = _seal(hub, tmp_path).read_bytes()
    third = len(data) // 3
    client = _client(hub)
    token = _token(client, hub.world.khm_key, "KHM")
    upload_id = _create(client, token, len(data))
    first = _patch(client, token, upload_id, 0, data[:third])
    assert first.status_code == 204 and first.headers["upload-offset"] == str(third)
    # Not finished: intake refuses to start, and says where the upload stands.
    early = _finish(client, token, upload_id)
    assert (early.status_code, early.json()["reason"]) == (409, "upload_incomplete")
    assert early.json()["offset"] == third
    # The hub restarts: a new app on the same spool knows the upload and its offset.
    client = _client(hub)
    assert _offset(client, token, upload_id) == third
    head = client.head(f"/v1/uploads/{upload_id}", headers=_auth(token))
    assert head.headers["upload-length"] == str(len(data))
    assert _patch(client, token, upload_id, third, data[third:]).status_code == 204
    answer = _finish(client, token, upload_id)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["status"] == "accepted"
    stored = hub.context.store.get(SUBMISSION_ID)
    assert stored is not None and Path(stored.stored_path).read_bytes() == data
    # A final answer deletes the upload.
    assert _files(hub) == []
    assert client.head(f"/v1/uploads/{upload_id}", headers=_auth(token)).status_code == 404


def test_offset_mismatch_and_overflow(hub: Hub, tmp_path: Path) -> None:
    client = _client(hub)
    token = _token(client, hub.world.khm_key, "KHM")
    upload_id = _create(client, token, 10)
    assert _patch(client, token, upload_id, 0, b"abcd").status_code == 204
    stale = _patch(client, token, upload_id, 0, b"abcd")
    assert (stale.status_code, stale.json()["reason"]) == (409, "offset_mismatch")
    assert stale.json()["offset"] == 4 and stale.headers["upload-offset"] == "4"
    past = _patch(client, token, upload_id, 4, b"0123456789")
    assert (past.status_code, past.json()["reason"]) == (413, "too_large")
    wrong_type = client.patch(
        f"/v1/uploads/{upload_id}",
        content=b"x",
        headers={**_auth(token), "Upload-Offset": "4", "Content-Type": "application/zip"},
    )
    assert wrong_type.status_code == 415
    no_offset = client.patch(
        f"/v1/uploads/{upload_id}",
        content=b"x",
        headers={**_auth(token), "Content-Type": OFFSET_STREAM},
    )
    assert (no_offset.status_code, no_offset.json()["reason"]) == (400, "invalid_request")
    assert _offset(client, token, upload_id) == 4


def test_another_country_cannot_see_an_upload(hub: Hub, tmp_path: Path) -> None:
    client = _client(hub)
    khm = _token(client, hub.world.khm_key, "KHM")
    lao = _token(client, hub.world.lao_key, "LAO")
    upload_id = _create(client, khm, 100)
    for token, target in [(lao, upload_id), (khm, "no-such-upload-id-xyz"), (khm, "....")]:
        assert client.head(f"/v1/uploads/{target}", headers=_auth(token)).status_code == 404
        patched = _patch(client, token, target, 0, b"x")
        assert (patched.status_code, patched.json()["reason"]) == (404, "upload_not_found")
        finished = _finish(client, token, target)
        assert (finished.status_code, finished.json()["reason"]) == (404, "upload_not_found")
    assert _offset(client, khm, upload_id) == 0
    assert client.head("/v1/uploads/..%2F..%2Fhub.sqlite", headers=_auth(khm)).status_code == 404
    anonymous = client.post("/v1/uploads", headers={"Upload-Length": "10"})
    assert anonymous.status_code == 401


def test_too_large_and_invalid_lengths(hub: Hub) -> None:
    client = _client(hub, max_body_bytes=1000)
    token = _token(client, hub.world.khm_key, "KHM")
    big = client.post("/v1/uploads", headers={**_auth(token), "Upload-Length": "1001"})
    assert (big.status_code, big.json()["reason"]) == (413, "too_large")
    for length in (None, "", "-1", "1e3", "0", " 12 x"):
        headers = _auth(token) if length is None else {**_auth(token), "Upload-Length": length}
        answer = client.post("/v1/uploads", headers=headers)
        assert (answer.status_code, answer.json()["reason"]) == (400, "invalid_request"), length
    assert _files(hub) == []


def test_duplicate_and_refusal_are_final(hub: Hub, tmp_path: Path) -> None:
    client = _client(hub)
    token = _token(client, hub.world.khm_key, "KHM")
    data = _seal(hub, tmp_path).read_bytes()
    answers = []
    for _ in range(2):
        upload_id = _create(client, token, len(data))
        assert _patch(client, token, upload_id, 0, data).status_code == 204
        answers.append(_finish(client, token, upload_id))
        assert _files(hub) == []
    assert [a.status_code for a in answers] == [201, 200]
    assert answers[1].json()["status"] == "duplicate"
    assert answers[1].json()["manifest_sha256"] == answers[0].json()["manifest_sha256"]
    assert len(hub.context.store.submissions()) == 1
    # An intake refusal is final too: the upload is gone.
    other = _seal(hub, tmp_path, name="o.zip", created_at="2026-01-08T00:00:00+00:00")
    upload_id = _create(client, token, other.stat().st_size)
    assert _patch(client, token, upload_id, 0, other.read_bytes()).status_code == 204
    conflict = _finish(client, token, upload_id)
    assert (conflict.status_code, conflict.json()["reason"]) == (409, "submission_id_conflict")
    assert _files(hub) == []


def test_stale_uploads_expire(hub: Hub) -> None:
    clock = Clock(NOW)
    client = _client(hub, clock)
    token = _token(client, hub.world.khm_key, "KHM")
    old = _create(client, token, 10)
    clock.now = NOW + timedelta(hours=4)
    token = _token_at(client, hub, clock.now)
    young = _create(client, token, 10)
    clock.now = NOW + timedelta(hours=24)
    token = _token_at(client, hub, clock.now)
    _create(client, token, 10)
    assert client.head(f"/v1/uploads/{old}", headers=_auth(token)).status_code == 404
    assert _offset(client, token, young) == 0


def test_an_interrupted_append_keeps_what_was_written(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "uploads", max_length=100)
    upload = uploads.create("KHM", 10, NOW)
    writer = uploads.writer(upload.upload_id, "KHM", 0)
    writer.write(b"abc")
    with pytest.raises(UploadError) as busy:
        uploads.writer(upload.upload_id, "KHM", 0)
    assert busy.value.reason == "upload_busy"
    assert writer.close() == 3  # the connection dropped here
    assert uploads.get(upload.upload_id, "KHM").offset == 3
    writer = uploads.writer(upload.upload_id, "KHM", 3)
    with pytest.raises(UploadError) as err:
        writer.write(b"0123456789")
    assert err.value.reason == "too_large"
    assert writer.close() == 3
    with pytest.raises(UploadError) as mismatch:
        uploads.writer(upload.upload_id, "KHM", 0)
    assert (mismatch.value.reason, mismatch.value.offset) == ("offset_mismatch", 3)
    with pytest.raises(UploadError) as other:
        uploads.get(upload.upload_id, "LAO")
    assert other.value.reason == "upload_not_found"
    assert upload.data.read_bytes() == b"abc"


def test_trust_list_needs_no_token(hub: Hub) -> None:
    answer = _client(hub).get("/v1/trust-list")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/jose"
    assert answer.text == hub.context.trust.token
