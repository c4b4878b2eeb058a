"""``/log``: the transparency log's latest signed tree head, recent leaves, how to verify.

Any role may read heads (``log.read``). A leaf's subject (a submission id and its
country) is shown only to those who may read that submission (``access.decide`` on
``submissions.read``); others see its index, kind and hash. The page only reads: heads
are signed by ``GET /v1/log/head`` and by the hub's own schedule.
"""

import json

from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.access import decide
from epibridge.hub.log import head_of
from epibridge.hub.tables import log_entries_table
from epibridge.web.viewer import Web

RECENT = 20


def register(app: FastAPI, web: Web) -> None:
    @app.get("/log", include_in_schema=False)
    def log(request: Request) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "log.read", "log")
        engine = web.current().store.engine
        head = head_of(engine)
        t = log_entries_table
        with engine.connect() as c:
            size = int(c.execute(select(func.coalesce(func.max(t.c.seq), 0))).scalar_one())
            recent = list(c.execute(select(t).order_by(t.c.seq.desc()).limit(RECENT)))
        leaves = []
        for row in recent:
            try:
                country = json.loads(row.entry).get("origin_country")
            except ValueError:
                country = None
            shown = decide(viewer.principal, "submissions.read", country).allowed
            leaves.append(
                {
                    "index": int(row.seq),
                    "kind": row.kind,
                    "subject": row.subject if shown else None,
                    "country": country if shown else None,
                    "leaf_hash": row.leaf_hash,
                    "logged_at": row.logged_at,
                }
            )
        return web.page(request, "log.html", {"head": head, "size": size, "leaves": leaves}, viewer)
