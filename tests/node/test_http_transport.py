"""The node's HTTP transport against the real hub service, served by uvicorn on a free port."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from joserfc.jwk import OKPKey

from epibridge.hub.app import create_app
from epibridge.hub.intake import RECEIPT_TYPE
from epibridge.model.errors import EpibridgeError
from epibridge.node.http_transport import HttpTransport
from epibridge.node.outbox import Accepted, Duplicate, Rejected, Transient
from epibridge.transport.keys import verify_compact
from epibridge.transport.seal import seal
from tests.hub import test_intake
from tests.hub.payloads import release_parts
from tests.hub.test_app import SUBMISSION_ID, Clock
from tests.hub.test_intake import NOW, Hub, _seal

hub = test_intake.hub
world = test_intake.world
url = test_intake.url  # on SQLite and on PostgreSQL, like the store

CHUNK = 64 * 1024
OFFSET = "application/offset+octet-stream"
_CLIENTS: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Every HTTP client a test made is closed after it (an open socket is a warning)."""
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


class Memory:
    """The outbox's upload memory, in a dict."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def get_upload(self, submission_id: str) -> str | None:
        return self.ids.get(submission_id)

    def set_upload(self, submission_id: str, upload_id: str | None) -> None:
        if upload_id is None:
            self.ids.pop(submission_id, None)
        else:
            self.ids[submission_id] = upload_id


class StopError(Exception):
    """The node dies mid-upload."""


@contextmanager
def _serve(hub: Hub, clock: Callable[[], datetime]) -> Iterator[str]:
    """The hub app under uvicorn in a thread; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub.context, clock), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the hub server did not start")
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def _verifier(hub: Hub) -> Callable[[str, str], None]:
    public = hub.world.hub_key.private_key.public_key()

    def verify(submission_id: str, receipt: str) -> None:
        try:
            claims = verify_compact(receipt, public, RECEIPT_TYPE)
        except ValueError as exc:
            raise EpibridgeError(f"the receipt does not verify: {exc}") from None
        if claims.get("submission_id") != submission_id:
            raise EpibridgeError("the receipt is for another submission")

    return verify


class Seen:
    """Every request the transport made: (method, path)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path))

    def count(self, method: str, prefix: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))


def _transport(
    hub: Hub,
    base: str,
    memory: Memory | None = None,
    *,
    clock: Callable[[], datetime] = lambda: NOW,
    verify: Callable[[str, str], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
    seen: Seen | None = None,
) -> HttpTransport:
    client = httpx.Client(event_hooks={"request": [seen]} if seen else {})
    _CLIENTS.append(client)
    return HttpTransport(
        base_url=base,
        country="KHM",
        signing_key=lambda: hub.world.khm_key,
        clock=clock,
        verify_receipt=verify or _verifier(hub),
        uploads=memory or Memory(),
        client=client,
        chunk_size=CHUNK,
        chunk_threshold=CHUNK,
        on_chunk=on_chunk,
    )


def _big_seal(hub: Hub, tmp: Path) -> Path:
    """A sealed file of about a megabyte (random bytes do not compress)."""
    parts = release_parts(tmp / "big-parts", hub.agreement, rows=50_000)
    manifest = {
        "submission_id": SUBMISSION_ID,
        "origin_country": "KHM",
        "agreement_id": hub.agreement.id,
        "agreement_sha256": hub.agreement.sha256,
        "period": {"from": "2026-01-05", "to": "2026-01-11"},
        "revision_of": None,
        "created_at": NOW.isoformat(),
    }
    out = tmp / "big.zip"
    key = hub.world.khm_key
    seal(
        out,
        manifest,
        parts,
        OKPKey.import_key(key.private_key, {"kid": key.kid}),
        OKPKey.import_key(hub.enc.private_key.public_key(), {"kid": hub.enc.kid}),
    )
    return out


def _stored(hub: Hub) -> bytes:
    stored = hub.context.store.get(SUBMISSION_ID)
    assert stored is not None
    return Path(stored.stored_path).read_bytes()


def test_small_file_accepted_then_duplicate(hub: Hub, tmp_path: Path) -> None:
    path = _seal(hub, tmp_path)
    assert path.stat().st_size <= CHUNK
    seen = Seen()
    with _serve(hub, lambda: NOW) as base:
        transport = _transport(hub, base, seen=seen)
        first = transport.send(path, SUBMISSION_ID)
        again = transport.send(path, SUBMISSION_ID)
    assert isinstance(first, Accepted), first
    assert isinstance(again, Duplicate), again
    assert seen.count("PUT", "/v1/submissions/") == 2 and seen.count("PATCH") == 0
    assert seen.count("POST", "/v1/token") == 1  # the token is cached
    assert _stored(hub) == path.read_bytes()
    assert len(hub.context.store.submissions()) == 1


def test_large_file_goes_in_chunks(hub: Hub, tmp_path: Path) -> None:
    path = _big_seal(hub, tmp_path)
    size = path.stat().st_size
    memory, seen, offsets = Memory(), Seen(), list[int]()
    with _serve(hub, lambda: NOW) as base:
        transport = _transport(hub, base, memory, seen=seen, on_chunk=offsets.append)
        delivery = transport.send(path, SUBMISSION_ID)
        assert isinstance(delivery, Accepted), delivery
        assert isinstance(transport.send(path, SUBMISSION_ID), Duplicate)
    chunks = -(-size // CHUNK)
    assert offsets[:chunks] == [min(size, CHUNK * (i + 1)) for i in range(chunks)]
    assert seen.count("PATCH") == 2 * chunks
    assert memory.ids == {}
    assert _stored(hub) == path.read_bytes()
    assert list((hub.context.spool / "uploads").glob("*.part")) == []


def test_an_interrupted_upload_resumes_after_a_restart(hub: Hub, tmp_path: Path) -> None:
    path = _big_seal(hub, tmp_path)
    size = path.stat().st_size
    memory, offsets = Memory(), list[int]()

    def die_after_two(offset: int) -> None:
        offsets.append(offset)
        if len(offsets) == 2:
            raise StopError

    with _serve(hub, lambda: NOW) as base, pytest.raises(StopError):
        _transport(hub, base, memory, on_chunk=die_after_two).send(path, SUBMISSION_ID)
    assert offsets == [CHUNK, 2 * CHUNK]
    assert SUBMISSION_ID in memory.ids
    assert hub.context.store.submissions() == []
    # A new hub process on the same spool and a new node process with the same memory.
    seen, resumed = Seen(), list[int]()
    with _serve(hub, lambda: NOW) as base:
        delivery = _transport(hub, base, memory, seen=seen, on_chunk=resumed.append).send(
            path, SUBMISSION_ID
        )
    assert isinstance(delivery, Accepted), delivery
    assert resumed[0] == 3 * CHUNK and resumed[-1] == size
    assert seen.count("HEAD") == 1 and seen.count("POST", "/v1/uploads") == 0
    assert _stored(hub) == path.read_bytes()
    assert len(hub.context.store.submissions()) == 1
    assert memory.ids == {}


def test_a_forgotten_upload_starts_again(hub: Hub, tmp_path: Path) -> None:
    path = _big_seal(hub, tmp_path)
    memory = Memory()
    memory.set_upload(SUBMISSION_ID, "no-such-upload-on-the-hub")
    with _serve(hub, lambda: NOW) as base:
        delivery = _transport(hub, base, memory).send(path, SUBMISSION_ID)
    assert isinstance(delivery, Accepted), delivery
    assert _stored(hub) == path.read_bytes()


def test_a_hub_that_is_down_is_transient(hub: Hub, tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there
    transport = _transport(hub, f"http://127.0.0.1:{port}")
    for path in (_seal(hub, tmp_path), _big_seal(hub, tmp_path)):
        delivery = transport.send(path, SUBMISSION_ID)
        assert isinstance(delivery, Transient), delivery
        assert f"127.0.0.1:{port}" in delivery.message


def test_refusals_are_rejected_with_the_hubs_reason(hub: Hub, tmp_path: Path) -> None:
    wrong_hash = _seal(hub, tmp_path, agreement_sha256="00" * 32)
    spoofed = _seal(hub, tmp_path, name="spoofed.zip", signer=hub.world.lao_key)
    big = _big_seal(hub, tmp_path)
    memory = Memory()
    with _serve(hub, lambda: NOW) as base:
        transport = _transport(hub, base, memory)
        refused = transport.send(wrong_hash, SUBMISSION_ID)
        foreign = transport.send(spoofed, SUBMISSION_ID)
        mismatched = transport.send(big, "99999999-2222-4333-8444-555555555555")
    assert isinstance(refused, Rejected) and refused.reason == "agreement_mismatch", refused
    assert refused.message
    assert isinstance(foreign, Rejected), foreign
    assert foreign.reason in {"unknown_key", "country_mismatch"}
    assert isinstance(mismatched, Rejected) and mismatched.reason == "id_mismatch", mismatched
    assert memory.ids == {}
    assert hub.context.store.submissions() == []


def test_a_receipt_that_does_not_verify_is_transient(hub: Hub, tmp_path: Path) -> None:
    def refuse(submission_id: str, receipt: str) -> None:
        raise EpibridgeError("signed by a key the trust list does not know")

    path = _seal(hub, tmp_path)
    with _serve(hub, lambda: NOW) as base:
        delivery = _transport(hub, base, verify=refuse).send(path, SUBMISSION_ID)
        assert isinstance(delivery, Transient), delivery
        assert "does not verify" in delivery.message and "trust list" in delivery.message
        # Once the node trusts the receipt, the next send is acknowledged.
        assert isinstance(_transport(hub, base).send(path, SUBMISSION_ID), Duplicate)


def test_an_expired_token_is_refreshed_once(hub: Hub, tmp_path: Path) -> None:
    hub_clock, node_clock = Clock(NOW), Clock(NOW)
    path = _seal(hub, tmp_path)
    seen = Seen()
    with _serve(hub, hub_clock) as base:
        transport = _transport(hub, base, clock=node_clock, seen=seen)
        assert isinstance(transport.send(path, SUBMISSION_ID), Accepted)
        # The node still holds its token; the hub's clock says it has expired.
        node_clock.now = NOW + timedelta(minutes=4)
        hub_clock.now = NOW + timedelta(minutes=5, seconds=1)
        delivery = transport.send(path, SUBMISSION_ID)
    assert isinstance(delivery, Duplicate), delivery
    assert seen.count("POST", "/v1/token") == 2
    assert seen.count("PUT") == 3  # the second send's first try was refused, then retried


def test_secrets_stay_out_of_messages(hub: Hub, tmp_path: Path) -> None:
    path = _seal(hub, tmp_path)
    with _serve(hub, lambda: NOW) as base:
        transport = _transport(hub, base, verify=lambda sid, receipt: None)
        assert isinstance(transport.send(path, SUBMISSION_ID), Accepted)
        token = transport._token  # a look inside: the token must leak nowhere
    assert token is not None
    down = transport.send(path, SUBMISSION_ID)  # the server is gone
    assert isinstance(down, Transient)
    assert token.value not in down.message


def test_a_dropped_patch_resumes_from_the_offset_the_hub_reports(hub: Hub, tmp_path: Path) -> None:
    full = bytes(range(256)) * 4
    with _serve(hub, lambda: NOW) as base:
        transport = _transport(hub, base)
        auth = transport._auth_headers()  # a look inside: a token for the raw requests below
        client = httpx.Client()
        _CLIENTS.append(client)
        created = client.post(
            f"{base}/v1/uploads", headers={**auth, "Upload-Length": str(len(full))}
        )
        upload_id = created.json()["upload_id"]
        host, port = base.removeprefix("http://").split(":")
        head = (
            f"PATCH /v1/uploads/{upload_id} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {auth['Authorization']}\r\nUpload-Offset: 0\r\n"
            f"Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(full)}\r\n\r\n"
        )
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(head.encode("ascii") + full[:300])  # then the link drops
        # Whatever part of those bytes the hub wrote, the offset it reports is where the
        # rest goes; it may still be closing the dropped request (409), so ask again.
        for _ in range(1000):
            answer = client.head(f"{base}/v1/uploads/{upload_id}", headers=auth)
            offset = int(answer.headers["upload-offset"])
            assert 0 <= offset <= 300
            more = client.patch(
                f"{base}/v1/uploads/{upload_id}",
                content=full[offset:],
                headers={**auth, "Upload-Offset": str(offset), "Content-Type": OFFSET},
            )
            if more.status_code != 409:
                break
            threading.Event().wait(0.01)
        assert more.status_code == 204, more.text
        assert more.headers["upload-offset"] == str(len(full))
    assert next((hub.context.spool / "uploads").glob("*.part")).read_bytes() == full
