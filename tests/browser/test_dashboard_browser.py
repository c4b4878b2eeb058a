"""The dashboard in a real browser: every role logs in and reads what it may."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Watched, log_in
from tests.web.conftest import ROLES

PAGES = ("/", "/map", "/curves", "/quality", "/submissions", "/agreements", "/log")


@pytest.mark.parametrize("who", sorted(ROLES))
def test_each_role_logs_in_and_reads_the_pages_it_may(
    served: str, tokens: dict[str, str], watched: Watched, who: str
) -> None:
    log_in(watched, served, who, tokens[who])
    page = watched.page
    for path in PAGES:
        answer = page.goto(f"{served}{path}")
        assert answer is not None
        assert answer.status in (200, 403), (path, answer.status)
        if answer.status == 403:
            assert page.locator("main").inner_text().strip(), path  # the refusal says why
        else:
            assert page.locator("main").count() == 1, path
    watched.shot(f"overview-{who}")


def test_the_map_shows_areas_with_their_intervals_and_the_disclaimer(
    served: str, tokens: dict[str, str], watched: Watched
) -> None:
    log_in(watched, served, "analyst", tokens["analyst"])
    page = watched.page
    page.goto(f"{served}/map?measure=corrected")
    svg = page.locator("svg").first
    assert svg.is_visible()
    assert page.locator("svg path").count() > 10
    titles = page.locator("svg title").all_text_contents()
    assert any(re.search(r"\d", t) for t in titles)
    assert "do not imply official endorsement" in page.content()
    watched.shot("map-corrected")
    page.goto(f"{served}/map?lang=km")
    assert re.search("[\u1780-\u17ff]", page.locator("body").inner_text())  # Khmer script
    watched.shot("map-khmer")


def test_a_small_screen_still_reads_the_curves(
    served: str, tokens: dict[str, str], watched: Watched
) -> None:
    page = watched.page
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(watched, served, "khm_epi", tokens["khm_epi"])
    page.goto(f"{served}/curves?lang=vi")
    assert page.locator("svg").first.is_visible()
    watched.shot("curves-small-screen-vi")
