"""The hub's HTTP face: a token endpoint and an idempotent submission upload.

``POST /v1/token`` trades a node's signed client assertion for a five-minute bearer token
(``hub/auth.py``). ``PUT /v1/submissions/{id}`` streams the sealed file to the spool and
hands it to ``intake.receive``, the same checks the offline path runs; the token's country
and the path's id must be the manifest's, or nothing is stored. ``GET /v1/versions`` says
which container versions the hub opens. Every refusal is ``{"reason", "message"}``.

A large sealed file can instead arrive as a resumable upload (tus-style, offset-based):
``POST /v1/uploads`` creates it, ``HEAD`` tells its offset, ``PATCH`` appends at the offset,
and ``PUT /v1/submissions/{id}`` with ``Upload-Id`` runs the same intake on the finished
file. The bookkeeping is ``hub/uploads.py``; this module only maps HTTP to it.
``GET /v1/trust-list`` hands out the hub-signed trust list so nodes can refresh theirs.

Nothing secret is logged: not the assertion, not the token, not the Authorization header.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
runtime, and the dependency they name is local to ``create_app``.
"""

import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from epibridge import __version__
from epibridge.hub.access import Principal
from epibridge.hub.api_alerts import register_alert_routes
from epibridge.hub.api_log import register_log_routes
from epibridge.hub.api_partner import register_partner_routes
from epibridge.hub.auth import (
    ACCESS_TOKEN_LIFETIME,
    CLIENT_ASSERTION_TYPE,
    AuthError,
    StoredReplayCache,
    issue_access_token,
    verify_access_token,
    verify_assertion,
)
from epibridge.hub.intake import HubContext, IntakeRefused, Receipt, receive
from epibridge.hub.uploads import UPLOAD_TTL, UploadError, Uploads
from epibridge.hub.users import TOKEN_PREFIX, principal_of
from epibridge.transport.seal import SUPPORTED_VERSIONS
from epibridge.web.register import register_dashboard

logger = logging.getLogger(__name__)

TOKEN_PATH = "/v1/token"
# A sealed upload larger than this is refused before it fills the spool's disk.
MAX_BODY_BYTES = 1 << 30
# A token request is a few form fields; anything larger is not one.
MAX_FORM_BYTES = 64 * 1024
# The media type of a PATCH body (tus 1.0 core, and the IETF resumable-upload draft).
OFFSET_STREAM = "application/offset+octet-stream"
_UPLOAD_STATUS = {
    "invalid_request": 400,
    "upload_not_found": 404,
    "offset_mismatch": 409,
    "upload_incomplete": 409,
    "upload_busy": 409,
    "too_large": 413,
}


class ApiError(Exception):
    """An answer other than success: HTTP ``status`` and the ``reason``/``message`` body."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(message)


def _upload_refusal(exc: UploadError) -> ApiError:
    """An ``UploadError`` as an answer; the current offset, when known, in body and header."""
    if exc.offset is None:
        return ApiError(_UPLOAD_STATUS.get(exc.reason, 400), exc.reason, exc.message)
    return ApiError(
        _UPLOAD_STATUS.get(exc.reason, 400),
        exc.reason,
        exc.message,
        {"offset": exc.offset},
        {"Upload-Offset": str(exc.offset)},
    )


def _whole_number(text: str | None, header: str) -> int:
    if text is None or not text.isascii() or not text.isdigit():
        raise ApiError(400, "invalid_request", f"send {header} as a whole number of bytes")
    return int(text)


async def _empty_body(request: Request, what: str) -> None:
    async for chunk in request.stream():
        if chunk:
            raise ApiError(400, "invalid_request", f"{what} has an empty body")


def _refusal_status(reason: str) -> int:
    if reason == "submission_id_conflict":
        return 409
    if reason == "token_country_mismatch":
        return 403
    return 422


def _message(exc: IntakeRefused) -> str:
    """The human text of a refusal, without the ``[reason]`` suffix the exception adds."""
    return exc.message


async def _form(request: Request) -> dict[str, str]:
    """The token request's ``application/x-www-form-urlencoded`` fields (one value each)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise ApiError(
            400, "invalid_request", "send the token request as application/x-www-form-urlencoded"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, "too_large", "the token request is larger than any valid one")
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=False, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_request", "the token request's form cannot be read") from None
    if any(len(values) != 1 for values in fields.values()):
        raise ApiError(400, "invalid_request", "each token request field may appear only once")
    return {name: values[0] for name, values in fields.items()}


def _auth_dependencies(
    current: Callable[[], HubContext], clock: Callable[[], datetime]
) -> tuple[Callable[..., str], Callable[..., Principal]]:
    """The two ways a route knows its caller: ``authenticated`` (a node, by its access
    token: its country) and ``principal`` (a person's user token, or a node)."""

    def bearer(authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            logger.warning("refused request without a bearer token")
            raise ApiError(
                401, "missing_token", f"send Authorization: Bearer <token> from {TOKEN_PATH}"
            )
        return token.strip()

    def node_country(token: str) -> str:
        try:
            return verify_access_token(token, current().signing_key, clock())
        except AuthError as exc:
            logger.warning("refused bearer token: %s", exc.reason)
            raise ApiError(exc.status, exc.reason, exc.message) from None

    def authenticated(authorization: Annotated[str | None, Header()] = None) -> str:
        """The country of a node's valid access token; 401 otherwise (403 for a person's
        token: sending data is for nodes). Never logs the token."""
        token = bearer(authorization)
        if token.startswith(TOKEN_PREFIX):
            raise ApiError(403, "node_only", "only a node, with a token from its key, may do this")
        return node_country(token)

    def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        """A person (user token) or a node (access token); 401 otherwise."""
        token = bearer(authorization)
        if token.startswith(TOKEN_PREFIX):
            found = principal_of(current().store.engine, token)
            if found is None:
                logger.warning("refused an unknown or revoked user token")
                raise ApiError(401, "invalid_token", "the user token is unknown or revoked")
            return found
        country = node_country(token)
        return Principal(country, "node", country)

    return authenticated, principal


def create_app(
    context: HubContext | Callable[[], HubContext],
    clock: Callable[[], datetime],
    *,
    token_url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    upload_ttl: timedelta = UPLOAD_TTL,
) -> FastAPI:
    """The hub service. ``clock`` gives the aware current time (a test passes its own).

    ``token_url`` is the audience client assertions must name; by default the URL the
    token request arrived at. Behind a reverse proxy, pass the public URL. Resumable
    uploads not finished within ``upload_ttl`` are deleted.

    ``context`` may be a function returning the current context (``hub/live.py``): a
    running hub then picks up new keys, trust lists and agreements without a restart.
    """
    current: Callable[[], HubContext] = (
        (lambda: context) if isinstance(context, HubContext) else context
    )
    app = FastAPI(
        title="epibridge hub",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    replay = StoredReplayCache(current().store.engine)
    uploads = Uploads(current().spool / "uploads", max_length=max_body_bytes, ttl=upload_ttl)

    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]

    authenticated, principal = _auth_dependencies(current, clock)

    @app.get("/v1/versions")
    def versions() -> dict[str, list[str]]:
        return {"protocol_versions": list(SUPPORTED_VERSIONS)}

    @app.get("/v1/trust-list")
    def trust_list() -> Response:
        return Response(current().trust.token, media_type="application/jose")

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        form = await _form(request)
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise ApiError(
                400, "invalid_request", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
            )
        assertion = form.get("client_assertion", "")
        if not assertion:
            raise ApiError(400, "invalid_request", "client_assertion is missing")
        audience = token_url or str(request.url.replace(query=None, fragment=None))
        now = clock()
        try:
            country = verify_assertion(assertion, current().trust, audience, now, replay)
        except AuthError as exc:
            logger.warning("refused token request: %s (%s)", exc.reason, exc.message)
            raise ApiError(exc.status, exc.reason, exc.message) from None
        issued = issue_access_token(current().signing_key, country, now, uuid.uuid4().hex)
        logger.info("issued an access token to %s", country)
        return JSONResponse(
            {
                "access_token": issued.token,
                "token_type": "bearer",
                "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    _upload_routes(app, uploads, clock, authenticated)
    register_log_routes(app, current, clock, authenticated, principal, ApiError)
    register_partner_routes(app, current, clock, principal, ApiError)
    register_dashboard(app, current, clock)
    register_alert_routes(app, current, clock, principal, ApiError)

    @app.put("/v1/submissions/{submission_id}")
    async def submit(
        submission_id: str,
        request: Request,
        country: Annotated[str, Depends(authenticated)],
        upload_id: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        if upload_id is None:
            receipt = await _receive_upload(
                current(), clock, request, submission_id, country, max_body_bytes
            )
        else:
            receipt = await _receive_resumed(
                current(), clock, uploads, request, submission_id, country, upload_id
            )
        logger.info("%s submission %s from %s", receipt.status, submission_id, country)
        return JSONResponse(
            {
                "status": receipt.status,
                "submission_id": receipt.submission_id,
                "receipt": receipt.token,
                "manifest_sha256": receipt.manifest_sha256,
            },
            status_code=201 if receipt.status == "accepted" else 200,
        )

    return app


def _upload_routes(
    app: FastAPI,
    uploads: Uploads,
    clock: Callable[[], datetime],
    authenticated: Callable[..., str],
) -> None:
    """``POST /v1/uploads``, ``HEAD`` and ``PATCH /v1/uploads/{id}``: HTTP onto ``Uploads``."""

    @app.post("/v1/uploads")
    async def create_upload(
        request: Request,
        country: Annotated[str, Depends(authenticated)],
        upload_length: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        length = _whole_number(upload_length, "Upload-Length")
        await _empty_body(request, "a request creating an upload")
        try:
            upload = uploads.create(country, length, clock())
        except UploadError as exc:
            raise _upload_refusal(exc) from None
        logger.info("created upload %s of %d bytes for %s", upload.upload_id, length, country)
        return JSONResponse(
            {"upload_id": upload.upload_id, "offset": 0, "length": length},
            status_code=201,
            headers={"Location": f"/v1/uploads/{upload.upload_id}"},
        )

    @app.head("/v1/uploads/{upload_id}")
    def upload_offset(upload_id: str, country: Annotated[str, Depends(authenticated)]) -> Response:
        try:
            upload = uploads.get(upload_id, country)
        except UploadError as exc:
            raise _upload_refusal(exc) from None
        return Response(
            status_code=200,
            headers={
                "Upload-Offset": str(upload.offset),
                "Upload-Length": str(upload.length),
                "Cache-Control": "no-store",
            },
        )

    @app.patch("/v1/uploads/{upload_id}")
    async def append(
        upload_id: str,
        request: Request,
        country: Annotated[str, Depends(authenticated)],
        upload_offset: Annotated[str | None, Header()] = None,
    ) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != OFFSET_STREAM:
            raise ApiError(415, "unsupported_media_type", f"send upload bytes as {OFFSET_STREAM}")
        offset = _whole_number(upload_offset, "Upload-Offset")
        try:
            new = await _append(uploads, request, upload_id, country, offset)
        except UploadError as exc:
            raise _upload_refusal(exc) from None
        return Response(
            status_code=204, headers={"Upload-Offset": str(new), "Cache-Control": "no-store"}
        )


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    headers.update(exc.headers)
    body = {"reason": exc.reason, "message": exc.message, **exc.extra}
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(
        {"reason": "invalid_request", "message": f"the request is malformed: {exc.errors()}"},
        status_code=400,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"reason": reason, "message": str(exc.detail)}, status_code=exc.status_code)


async def _receive_upload(
    context: HubContext,
    clock: Callable[[], datetime],
    request: Request,
    submission_id: str,
    country: str,
    max_body_bytes: int,
) -> Receipt:
    """Spool the body, run intake in a worker thread (it decrypts and writes the store)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/zip":
        raise ApiError(415, "unsupported_media_type", "send the sealed file as application/zip")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        raise ApiError(413, "too_large", f"the hub accepts at most {max_body_bytes} bytes")
    upload = await _spool(request, context.spool, max_body_bytes)
    try:
        return await _intake(context, clock, upload, submission_id, country)
    finally:
        upload.unlink(missing_ok=True)


async def _receive_resumed(
    context: HubContext,
    clock: Callable[[], datetime],
    uploads: Uploads,
    request: Request,
    submission_id: str,
    country: str,
    upload_id: str,
) -> Receipt:
    """Run intake on a finished resumable upload. A final answer (a receipt or an intake
    refusal) deletes the upload; anything else (a hub error) leaves it for a retry."""
    await _empty_body(request, "a submission naming Upload-Id (its bytes were PATCHed)")
    try:
        upload = uploads.complete(upload_id, country)
    except UploadError as exc:
        raise _upload_refusal(exc) from None
    try:
        receipt = await _intake(context, clock, upload.data, submission_id, country)
    except ApiError:
        uploads.discard(upload_id)
        raise
    uploads.discard(upload_id)
    return receipt


async def _append(
    uploads: Uploads, request: Request, upload_id: str, country: str, offset: int
) -> int:
    """Append the request body at ``offset``; the durable offset after it. Bytes received
    before a dropped connection or a refusal are kept (and fsynced): the next ``HEAD``
    reports them."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit():
        upload = uploads.get(upload_id, country)
        if offset + int(declared) > upload.length:
            raise UploadError(
                "too_large",
                f"upload {upload_id} is {upload.length} bytes long; {declared} bytes from "
                f"offset {offset} would pass its end",
            )
    writer = uploads.writer(upload_id, country, offset)
    dropped = False
    try:
        async for chunk in request.stream():
            writer.write(chunk)
    except ClientDisconnect:
        dropped = True  # nobody is left to answer; what arrived is kept
    finally:
        new = await run_in_threadpool(writer.close)
    if dropped:
        logger.info("upload %s: the connection dropped at offset %d", upload_id, new)
    return new


async def _intake(
    context: HubContext,
    clock: Callable[[], datetime],
    upload: Path,
    submission_id: str,
    country: str,
) -> Receipt:
    """Run intake on the sealed file at ``upload`` in a worker thread (it decrypts and
    writes the store); an intake refusal becomes an ``ApiError``."""
    try:
        now = clock()
        return await run_in_threadpool(
            lambda: receive(
                upload,
                context,
                now,
                expected_origin=country,
                expected_submission_id=submission_id,
            )
        )
    except IntakeRefused as exc:
        logger.warning("refused submission %s from %s: %s", submission_id, country, exc.reason)
        extra = (
            {"protocol_versions": list(SUPPORTED_VERSIONS)}
            if exc.reason == "unsupported_version"
            else None
        )
        raise ApiError(_refusal_status(exc.reason), exc.reason, _message(exc), extra) from None


async def _spool(request: Request, spool: Path, limit: int) -> Path:
    """Write the request body to a fresh file under ``spool``, chunk by chunk: a sealed
    file may be larger than the memory the hub can spare for it."""
    spool.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".upload-", suffix=".zip", dir=spool)
    path = Path(name)
    try:
        size = 0
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "too_large", f"the hub accepts at most {limit} bytes")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
