"""The hub's web dashboard: server-rendered pages over the same data and policy as the API.

``register_dashboard`` adds the pages to the hub's FastAPI app (``hub/app.py``). Pages are
Jinja2 templates rendered on the server, styled with one plain CSS file and usable with
JavaScript off; everything they need (CSS, fonts, a small script) is served from
``/static`` out of this package, so the dashboard works on a network with no Internet.
See ``docs/dashboard.md``.
"""

from epibridge.web.register import register_dashboard

__all__ = ["register_dashboard"]
