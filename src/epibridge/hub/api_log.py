"""The transparency log over HTTP: signed heads, proofs, and the nodes' countersignatures.

Every route needs a bearer token (a node's or a person's) and is authorized and logged
like every read (``hub/access.py``): any role may read tree heads and consistency proofs;
inclusion proofs follow ``submissions.read`` (a country's own submissions, or all for
the hub's roles); only nodes countersign. Heads are signed on demand when the tree has
grown since the last signed head.

No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
"""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from epibridge.hub.access import Principal
from epibridge.hub.gate import Gate
from epibridge.hub.intake import HubContext
from epibridge.hub.log import (
    COUNTERSIGNATURE_TYPE,
    LogError,
    TreeHead,
    entry_of,
    head_of,
    prove_consistency,
    prove_inclusion,
    sign_head,
)
from epibridge.hub.tables import countersignatures_table
from epibridge.transport.keys import TrustError, peek, verify_compact

# Larger than any log will grow; bounds what a request may ask before a query runs.
MAX_SIZE = 1 << 48


def _head(head: TreeHead) -> dict[str, Any]:
    return {
        "tree_size": head.tree_size,
        "root_hash": head.root_hash,
        "issued_at": head.issued_at.isoformat(),
        "token": head.token,
    }


def register_log_routes(
    app: FastAPI,
    current: Callable[[], HubContext],
    clock: Callable[[], datetime],
    authenticated: Callable[..., str],
    principal: Callable[..., Principal],
    api_error: Callable[[int, str, str], Exception],
) -> None:
    """Add the ``/v1/log/...`` routes to ``app``."""
    authorize = Gate(current, clock, api_error)

    @app.get("/v1/log/head")
    async def head(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        authorize(who, "log.read", "log/head")
        context = current()
        signed = await run_in_threadpool(
            sign_head, context.store.engine, context.signing_key, clock()
        )
        return _head(signed)

    @app.get("/v1/log/consistency")
    async def consistency(
        who: Annotated[Principal, Depends(principal)],
        first: Annotated[int, Query(ge=1, le=MAX_SIZE)],
        second: Annotated[int, Query(ge=1, le=MAX_SIZE)],
    ) -> dict[str, Any]:
        authorize(who, "log.read", f"log/consistency/{first}/{second}")
        engine = current().store.engine
        if head_of(engine, second) is None:
            raise api_error(404, "unknown_head", f"the hub signed no head of {second} leaves")
        try:
            proof = await run_in_threadpool(prove_consistency, engine, first, second)
        except LogError as exc:
            raise api_error(400, exc.reason, exc.message) from None
        return {"first": first, "second": second, "proof": proof}

    @app.get("/v1/log/inclusion/{submission_id}")
    async def inclusion(
        submission_id: str,
        who: Annotated[Principal, Depends(principal)],
        tree_size: Annotated[int, Query(ge=1, le=MAX_SIZE)],
    ) -> dict[str, Any]:
        engine = current().store.engine
        found = entry_of(engine, "submission", submission_id)
        origin = None if found is None else json.loads(found[1]).get("origin_country")
        authorize(who, "submissions.read", f"log/inclusion/{submission_id}", origin)
        if found is None:
            raise api_error(404, "not_found", f"the log holds no submission {submission_id}")
        if head_of(engine, tree_size) is None:
            raise api_error(404, "unknown_head", f"the hub signed no head of {tree_size} leaves")
        index, entry = found
        try:
            proof = await run_in_threadpool(prove_inclusion, engine, index, tree_size)
        except LogError as exc:
            raise api_error(400, exc.reason, exc.message) from None
        return {"leaf_index": index, "tree_size": tree_size, "entry": entry, "proof": proof}

    _countersign_route(app, current, clock, authenticated, api_error)


def _countersign_route(
    app: FastAPI,
    current: Callable[[], HubContext],
    clock: Callable[[], datetime],
    authenticated: Callable[..., str],
    api_error: Callable[[int, str, str], Exception],
) -> None:
    @app.post("/v1/log/heads/{tree_size}/countersignature", status_code=201)
    async def countersign(
        tree_size: Annotated[int, Path(ge=1, le=MAX_SIZE)],
        request: Request,
        country: Annotated[str, Depends(authenticated)],
    ) -> dict[str, Any]:
        context = current()
        token = (await request.body()).decode("ascii", errors="replace").strip()
        signed = head_of(context.store.engine, tree_size)
        if signed is None:
            raise api_error(404, "unknown_head", f"the hub signed no head of {tree_size} leaves")
        now = clock()
        try:
            kid = str(peek(token)[0].get("kid", ""))
            key = context.trust.resolve(country, kid, "sig", now)
            claims = verify_compact(token, key, COUNTERSIGNATURE_TYPE)  # type: ignore[arg-type]
        except (TrustError, ValueError) as exc:
            raise api_error(422, "bad_countersignature", f"the countersignature: {exc}") from None
        if (
            claims.get("tree_size") != tree_size
            or claims.get("root_hash") != signed.root_hash
            or claims.get("country") != country
        ):
            raise api_error(
                422,
                "bad_countersignature",
                "the countersignature names another head, root or country",
            )
        try:
            with context.store.engine.begin() as c:
                c.execute(
                    insert(countersignatures_table).values(
                        tree_size=tree_size, country=country, token=token, received_at=now
                    )
                )
        except IntegrityError:
            pass  # countersigned before: the first one is kept
        with context.store.engine.connect() as c:
            count = len(
                list(
                    c.execute(
                        select(countersignatures_table.c.country).where(
                            countersignatures_table.c.tree_size == tree_size
                        )
                    )
                )
            )
        return {"tree_size": tree_size, "country": country, "countersignatures": count}
