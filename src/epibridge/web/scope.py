"""What a viewer's regional pages are about: countries, diseases, the week shown.

The countries are those that sent the hub data and that the viewer may see
(``access.visible_countries``); the diseases those their agreements cover; the disease
shown the one asked for, or the first with data; the week the one asked for
(``2026-W02``), or the latest any of the countries sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from epibridge.web.data import countries_in_scope, diseases, latest_start
from epibridge.web.viewer import Viewer, Web

_WEEK = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True)
class Selection:
    visible: frozenset[str] | None  # None: every country
    countries: list[str]  # visible countries holding data
    diseases: list[str]
    disease: str | None
    latest: date | None  # first day of the latest period of the disease


def parse_week(text: str | None) -> date | None:
    """The Monday of an ISO week written ``YYYY-Www``; None when absent or malformed."""
    match = _WEEK.fullmatch(text or "")
    if match is None:
        return None
    try:
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        return None


def week_name(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def monday(day: date) -> date:
    return date.fromisocalendar(*day.isocalendar()[:2], 1)


def selection(web: Web, viewer: Viewer, disease: str | None) -> Selection:
    context = web.current()
    visible = web.visible(viewer)
    countries = countries_in_scope(context, visible)
    known = diseases(context, countries)
    chosen = disease if disease in known else None
    latest = None
    for candidate in [chosen] if chosen else known:
        assert candidate is not None
        latest = latest_start(context, countries, candidate)
        if latest is not None:
            chosen = candidate
            break
    if chosen is None and known:
        chosen = known[0]
    return Selection(visible, countries, known, chosen, latest)
