"""The outbox's way to the hub over HTTP: a token, then the sealed file, whole or resumable.

``HttpTransport.send`` answers the outbox's questions (``node/outbox.py``): did the hub take
the submission (``Accepted``/``Duplicate``, with a receipt that verifies), refuse it for good
(``Rejected``, with the hub's reason), or should the node try later (``Transient``)? Network
trouble never raises: a dropped link, a timeout or a hub error 5xx is ``Transient``.

A file up to ``chunk_threshold`` goes in one streamed ``PUT``. A larger one goes as a
resumable upload (docs/protocol.md, "Resumable upload"): its id is remembered through
``UploadMemory`` before the first byte is sent, so the next send, even after the node
restarted, asks the hub for the offset and sends only the missing bytes.

Access tokens come from ``POST /v1/token`` with a client assertion signed by the node's
key (SMART Backend Services), are cached until shortly before they expire, and are fetched
again once when the hub says a token has expired or is not valid. Tokens, assertions and
Authorization headers are never put in a message.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from epibridge.hub.auth import CLIENT_ASSERTION_TYPE, client_assertion
from epibridge.model.errors import EpibridgeError
from epibridge.node.outbox import Accepted, Delivery, Duplicate, Rejected, Transient
from epibridge.transport.keystore import SigningKey

CHUNK_SIZE = 4 << 20
CHUNK_THRESHOLD = 8 << 20
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# A cached token is replaced this long before the hub would call it expired.
TOKEN_MARGIN = timedelta(seconds=30)
OFFSET_STREAM = "application/offset+octet-stream"
_RETRY_TOKEN = frozenset({"expired_token", "invalid_token"})
# The hub answering offset_mismatch this many times in a row is not making progress.
_MAX_MISMATCHES = 3
_READ_BLOCK = 64 * 1024


class HubUnreachable(EpibridgeError):  # noqa: N818 (a state of the network, not a bug)
    """The hub gave no usable answer (network down, no token)."""


class UploadMemory(Protocol):
    """Where the node keeps a submission's resumable upload id between sends."""

    def get_upload(self, submission_id: str) -> str | None: ...

    def set_upload(self, submission_id: str, upload_id: str | None) -> None: ...


class _Done(Exception):  # noqa: N818 (a way out with an answer, not a failure)
    """Ends a send early with the delivery to report."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        super().__init__(str(delivery))


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: datetime


def _body(answer: httpx.Response) -> dict[str, Any] | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _reason(answer: httpx.Response) -> str | None:
    body = _body(answer)
    reason = None if body is None else body.get("reason")
    return reason if isinstance(reason, str) else None


def _blocks(path: Path, start: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``path`` from ``start``, a block at a time (never all at once)."""
    with path.open("rb") as source:
        source.seek(start)
        left = count
        while left > 0:
            block = source.read(min(_READ_BLOCK, left))
            if not block:
                raise OSError(f"{path} ended {left} bytes early: it changed while being sent")
            left -= len(block)
            yield block


class HttpTransport:
    """Sends sealed files to the hub at ``base_url`` as ``country``; see the module doc."""

    def __init__(
        self,
        *,
        base_url: str,
        country: str,
        signing_key: Callable[[], SigningKey],
        clock: Callable[[], datetime],
        verify_receipt: Callable[[str, str], None],
        uploads: UploadMemory,
        client: httpx.Client | None = None,
        chunk_size: int = CHUNK_SIZE,
        chunk_threshold: int = CHUNK_THRESHOLD,
        timeout: httpx.Timeout = TIMEOUT,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.base_url = base_url.rstrip("/")
        self.country = country
        self._signing_key = signing_key
        self._clock = clock
        self._verify_receipt = verify_receipt
        self._uploads = uploads
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None
        self.chunk_size = chunk_size
        self.chunk_threshold = chunk_threshold
        self._on_chunk = on_chunk
        self._token: _Token | None = None

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/v1/token"

    def close(self) -> None:
        """Close the HTTP client if this transport made it."""
        if self._owns_client:
            self._client.close()

    # -- the outbox's entry point -------------------------------------------------------

    def send(self, path: Path, submission_id: str) -> Delivery:
        """Deliver the sealed file at ``path``; never raises for network trouble."""
        try:
            size = path.stat().st_size
            if size <= self.chunk_threshold:
                answer = self._authorized(
                    lambda headers: self._put_whole(path, submission_id, size, headers)
                )
                return self._final(answer, submission_id)
            return self._resumable(path, submission_id, size)
        except _Done as done:
            return done.delivery
        except httpx.TimeoutException as exc:
            return Transient(
                f"the hub at {self.base_url} did not answer in time ({type(exc).__name__}); "
                "will try again"
            )
        except httpx.HTTPError as exc:  # connect, read, write, protocol errors
            return Transient(
                f"could not reach the hub at {self.base_url} ({type(exc).__name__}: {exc}); "
                "check the network, will try again"
            )
        except OSError as exc:
            return Transient(f"could not read {path} to send it: {exc}")

    # -- requests -----------------------------------------------------------------------

    def _put_whole(
        self, path: Path, submission_id: str, size: int, headers: dict[str, str]
    ) -> httpx.Response:
        return self._client.put(
            f"{self.base_url}/v1/submissions/{submission_id}",
            content=_blocks(path, 0, size),
            headers={
                **headers,
                "Content-Type": "application/zip",
                "Content-Length": str(size),
            },
        )

    def _resumable(self, path: Path, submission_id: str, size: int) -> Delivery:
        upload_id, offset = self._resume_or_create(submission_id, size)
        url = f"{self.base_url}/v1/uploads/{upload_id}"
        mismatches = 0
        while offset < size:
            count = min(self.chunk_size, size - offset)
            start = offset

            def patch(
                headers: dict[str, str], start: int = start, count: int = count
            ) -> httpx.Response:
                return self._client.patch(
                    url,
                    content=_blocks(path, start, count),
                    headers={
                        **headers,
                        "Upload-Offset": str(start),
                        "Content-Type": OFFSET_STREAM,
                        "Content-Length": str(count),
                    },
                )

            answer = self._authorized(patch)
            if answer.status_code == 204:
                offset = self._offset(answer.headers.get("upload-offset"), answer)
                mismatches = 0
                if self._on_chunk is not None:
                    self._on_chunk(offset)
                continue
            reason = _reason(answer)
            if (
                answer.status_code == 409
                and reason == "offset_mismatch"
                and mismatches < _MAX_MISMATCHES
            ):
                body = _body(answer) or {}
                offset = self._offset(str(body.get("offset", "")), answer)
                mismatches += 1
                continue
            self._lost_upload(answer, submission_id)
            return self._final(answer, submission_id)
        answer = self._authorized(
            lambda headers: self._client.put(
                f"{self.base_url}/v1/submissions/{submission_id}",
                headers={**headers, "Upload-Id": upload_id},
            )
        )
        self._lost_upload(answer, submission_id)
        return self._final(answer, submission_id)

    def _resume_or_create(self, submission_id: str, size: int) -> tuple[str, int]:
        """The upload to continue and its offset: the remembered one if the hub still has
        it (for this length), else a new one, remembered before any byte is sent."""
        known = self._uploads.get_upload(submission_id)
        if known is not None:
            head = self._authorized(
                lambda headers: self._client.head(
                    f"{self.base_url}/v1/uploads/{known}", headers=headers
                )
            )
            if head.status_code == 200 and head.headers.get("upload-length") == str(size):
                return known, self._offset(head.headers.get("upload-offset"), head)
            if head.status_code not in (200, 404):
                raise _Done(self._final(head, submission_id))
            self._uploads.set_upload(submission_id, None)  # gone, or of another length
        created = self._authorized(
            lambda headers: self._client.post(
                f"{self.base_url}/v1/uploads", headers={**headers, "Upload-Length": str(size)}
            )
        )
        body = _body(created) or {}
        upload_id = body.get("upload_id")
        if created.status_code != 201 or not isinstance(upload_id, str) or not upload_id:
            if created.status_code == 201:
                raise _Done(Transient("the hub created an upload but named no upload_id"))
            raise _Done(self._final(created, submission_id))
        self._uploads.set_upload(submission_id, upload_id)
        return upload_id, 0

    def _lost_upload(self, answer: httpx.Response, submission_id: str) -> None:
        """An answer about the upload itself, not the submission: start again later."""
        reason = _reason(answer)
        if reason == "upload_not_found":
            self._uploads.set_upload(submission_id, None)
            raise _Done(
                Transient("the hub no longer has this upload (expired?); will start a new one")
            )
        if reason in {"upload_incomplete", "offset_mismatch", "upload_busy"}:
            raise _Done(
                Transient(f"the hub answered {reason} for the upload; will resume from its offset")
            )

    @staticmethod
    def _offset(text: str | None, answer: httpx.Response) -> int:
        if text is None or not text.isascii() or not text.isdigit():
            raise _Done(
                Transient(f"the hub's answer (HTTP {answer.status_code}) gave no valid offset")
            )
        return int(text)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """An authorized request to the hub outside the upload flow (the log endpoints).

        Raises ``HubUnreachable`` when no answer or no token can be had."""
        url = f"{self.base_url}{path}"
        try:
            return self._authorized(
                lambda headers: self._client.request(method, url, headers=headers, **options)
            )
        except _Done as done:
            raise HubUnreachable(str(getattr(done.delivery, "message", done.delivery))) from None
        except httpx.HTTPError as exc:
            raise HubUnreachable(
                f"could not reach the hub at {self.base_url} ({type(exc).__name__})"
            ) from None

    # -- tokens -------------------------------------------------------------------------

    def _authorized(self, request: Callable[[dict[str, str]], httpx.Response]) -> httpx.Response:
        """Make ``request`` with a bearer token; once more with a new token if the hub says
        the token expired or is not one it issued."""
        answer = request(self._auth_headers())
        if answer.status_code == 401 and _reason(answer) in _RETRY_TOKEN:
            answer.close()
            self._token = None
            answer = request(self._auth_headers())
        return answer

    def _auth_headers(self) -> dict[str, str]:
        now = self._clock()
        if self._token is None or now >= self._token.renew_at:
            self._token = self._new_token(now)
        return {"Authorization": f"Bearer {self._token.value}"}

    def _new_token(self, now: datetime) -> _Token:
        assertion = client_assertion(
            self._signing_key(), self.country, self.token_url, now, secrets.token_urlsafe(18)
        )
        answer = self._client.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
        body = _body(answer) or {}
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if answer.status_code == 200 and isinstance(token, str) and isinstance(lifetime, int):
            return _Token(token, now + timedelta(seconds=lifetime) - TOKEN_MARGIN)
        reason = body.get("reason")
        if answer.status_code >= 500 or not isinstance(reason, str):
            raise _Done(
                Transient(
                    f"the hub's token endpoint answered HTTP {answer.status_code}; will try again"
                )
            )
        # A refused token request is about this node's key or clock, not the submission:
        # once fixed, the same sealed file goes through, so it is not a final answer.
        raise _Done(
            Transient(
                f"the hub refused this node a token ({reason}: {body.get('message', '')}); "
                "check the node's signing key in the trust list and the node's clock"
            )
        )

    # -- answers ------------------------------------------------------------------------

    def _final(self, answer: httpx.Response, submission_id: str) -> Delivery:
        """The outbox's view of the hub's answer to a submission."""
        status, body = answer.status_code, _body(answer)
        if status in (200, 201) and body is not None:
            expected = "accepted" if status == 201 else "duplicate"
            receipt = body.get("receipt")
            if body.get("status") == expected and isinstance(receipt, str):
                self._uploads.set_upload(submission_id, None)
                try:
                    self._verify_receipt(submission_id, receipt)
                except EpibridgeError as exc:
                    return Transient(
                        f"the hub's receipt for {submission_id} does not verify ({exc}); "
                        "refresh the trust list, then send again"
                    )
                return Accepted(receipt) if status == 201 else Duplicate(receipt)
        reason = None if body is None else body.get("reason")
        if status in (408, 429) or status >= 500:
            return Transient(
                f"the hub answered HTTP {status}"
                + (f" ({reason})" if reason else "")
                + "; will try again"
            )
        if 400 <= status < 500 and isinstance(reason, str):
            self._uploads.set_upload(submission_id, None)
            return Rejected(reason, str(body.get("message", "")) if body else "")
        return Transient(f"the hub gave an answer it should not (HTTP {status}); will try again")
