"""Rendering pages: one Jinja2 environment per language, autoescaped, gettext installed.

Templates live in ``web/templates``; each page gets the viewer, the language, the
number formatter, the navigation and a CSRF token for its forms. Responses carry a
Content-Security-Policy that allows nothing but the hub itself, so even a template
mistake cannot pull a resource from elsewhere.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from epibridge.web.i18n import LANGUAGES, N_, Formatter, translations

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: (path, label) of the navigation bar; /alerts is served by the alerts pages.
NAV = (
    ("/", N_("Overview")),
    ("/map", N_("Map")),
    ("/curves", N_("Curves")),
    ("/alerts", N_("Alerts")),
    ("/quality", N_("Quality")),
    ("/submissions", N_("Submissions")),
    ("/agreements", N_("Agreements")),
    ("/bulletin", N_("Bulletin")),
    ("/log", N_("Log")),
)


@functools.cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=PackageLoader("epibridge.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["zip"] = zip
    return env


def render(
    template: str, lang: str, context: dict[str, Any], status: int = 200, path: str = "/"
) -> HTMLResponse:
    """A page in ``lang``; ``path`` is the page's own path (for the language switcher)."""
    page = (
        environment(lang)
        .get_template(template)
        .render(
            lang=lang,
            languages=LANGUAGES,
            fmt=Formatter(lang),
            nav=NAV,
            path=path,
            **context,
        )
    )
    return HTMLResponse(page, status_code=status, headers=HEADERS)
