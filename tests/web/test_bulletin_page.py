"""``/bulletin``: the hub's roles download the weekly bulletin, logged as a release."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from epibridge.hub.audit import RELEASE_KIND
from epibridge.hub.tables import log_entries_table
from tests.hub.test_intake import Hub
from tests.web.conftest import log_in


def _releases(hub: Hub) -> list[str]:
    t = log_entries_table
    with hub.context.store.engine.connect() as c:
        return list(c.execute(select(t.c.subject).where(t.c.kind == RELEASE_KIND)).scalars())


def test_the_analyst_downloads_html_and_pdf_each_logged_once(
    client: TestClient, tokens: dict[str, str], hub: Hub
) -> None:
    log_in(client, "analyst", tokens["analyst"])
    form = client.get("/bulletin?week=2026-W02")
    assert form.status_code == 200 and 'action="/bulletin/download"' in form.text
    html = client.get("/bulletin/download", params={"week": "2026-W02", "format": "html"})
    assert html.status_code == 200
    assert "attachment" in html.headers["content-disposition"]
    assert b"<svg" in html.content and b"https://" not in html.content
    pdf = client.get("/bulletin/download", params={"week": "2026-W02", "format": "pdf"})
    assert pdf.content.startswith(b"%PDF")
    subjects = _releases(hub)
    assert len(subjects) == 2
    assert any(hashlib.sha256(html.content).hexdigest() in s for s in subjects)
    again = client.get("/bulletin/download", params={"week": "2026-W02", "format": "html"})
    assert again.content == html.content and len(_releases(hub)) == 2  # same file, one leaf


def test_countries_are_told_why_they_cannot_download_it(
    client: TestClient, tokens: dict[str, str]
) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    answer = client.get("/bulletin/download", params={"week": "2026-W02", "format": "html"})
    assert answer.status_code == 403 and "every country" in answer.text


def test_a_bad_week_is_explained(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "admin", tokens["admin"])
    answer = client.get("/bulletin/download", params={"week": "2026-W99", "format": "html"})
    assert answer.status_code == 422 and 'role="alert"' in answer.text
