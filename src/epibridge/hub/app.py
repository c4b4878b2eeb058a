"""The hub's HTTP face: a token endpoint and an idempotent submission upload.

``POST /v1/token`` trades a node's signed client assertion for a five-minute bearer token
(``hub/auth.py``). ``PUT /v1/submissions/{id}`` streams the sealed file to the spool and
hands it to ``intake.receive``, the same checks the offline path runs; the token's country
and the path's id must be the manifest's, or nothing is stored. ``GET /v1/versions`` says
which container versions the hub opens. Every refusal is ``{"reason", "message"}``.

Nothing secret is logged: not the assertion, not the token, not the Authorization header.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
runtime, and the dependency they name is local to ``create_app``.
"""

import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from epibridge.hub.auth import (
    ACCESS_TOKEN_LIFETIME,
    CLIENT_ASSERTION_TYPE,
    AuthError,
    ReplayCache,
    issue_access_token,
    verify_access_token,
    verify_assertion,
)
from epibridge.hub.intake import HubContext, IntakeRefused, Receipt, receive
from epibridge.transport.seal import SUPPORTED_VERSIONS

logger = logging.getLogger(__name__)

TOKEN_PATH = "/v1/token"
# A sealed upload larger than this is refused before it fills the spool's disk.
MAX_BODY_BYTES = 1 << 30
# A token request is a few form fields; anything larger is not one.
MAX_FORM_BYTES = 64 * 1024


class ApiError(Exception):
    """An answer other than success: HTTP ``status`` and the ``reason``/``message`` body."""

    def __init__(
        self, status: int, reason: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.extra = extra or {}
        super().__init__(message)


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


def create_app(
    context: HubContext,
    clock: Callable[[], datetime],
    *,
    token_url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The hub service. ``clock`` gives the aware current time (a test passes its own).

    ``token_url`` is the audience client assertions must name; by default the URL the
    token request arrived at. Behind a reverse proxy, pass the public URL.
    """
    app = FastAPI(title="epibridge hub", docs_url=None, redoc_url=None, openapi_url=None)
    replay = ReplayCache()

    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]

    def authenticated(authorization: Annotated[str | None, Header()] = None) -> str:
        """The country of a valid bearer token; 401 otherwise. Never logs the token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            logger.warning("refused request without a bearer token")
            raise ApiError(
                401, "missing_token", f"send Authorization: Bearer <token> from {TOKEN_PATH}"
            )
        try:
            return verify_access_token(token.strip(), context.signing_key, clock())
        except AuthError as exc:
            logger.warning("refused bearer token: %s", exc.reason)
            raise ApiError(exc.status, exc.reason, exc.message) from None

    @app.get("/v1/versions")
    def versions() -> dict[str, list[str]]:
        return {"protocol_versions": list(SUPPORTED_VERSIONS)}

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
            country = verify_assertion(assertion, context.trust, audience, now, replay)
        except AuthError as exc:
            logger.warning("refused token request: %s (%s)", exc.reason, exc.message)
            raise ApiError(exc.status, exc.reason, exc.message) from None
        issued = issue_access_token(context.signing_key, country, now, uuid.uuid4().hex)
        logger.info("issued an access token to %s", country)
        return JSONResponse(
            {
                "access_token": issued.token,
                "token_type": "bearer",
                "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    @app.put("/v1/submissions/{submission_id}")
    async def submit(
        submission_id: str,
        request: Request,
        country: Annotated[str, Depends(authenticated)],
    ) -> JSONResponse:
        receipt = await _receive_upload(
            context, clock, request, submission_id, country, max_body_bytes
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


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
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
    finally:
        upload.unlink(missing_ok=True)


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
