"""The hub's web dashboard: server-rendered pages over the same data and policy as the API.

``web.register.register_dashboard`` adds the pages to the hub's FastAPI app
(``hub/app.py``). Pages are Jinja2 templates rendered on the server, styled with one plain
CSS file and usable with JavaScript off; everything they need (CSS, fonts, a small script)
is served from ``/static`` out of this package, so the dashboard works on a network with
no Internet. See ``docs/dashboard.md``. The package itself imports nothing, so that the
bulletin can use its map and curve builders without loading the pages.
"""
