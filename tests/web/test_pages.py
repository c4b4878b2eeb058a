"""Every role opens every page: 200 where the policy allows, 403 with an explanation."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from epibridge.hub.app import create_app
from epibridge.hub.tables import access_log_table
from epibridge.registry.expansion import FILE_NAME
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.web.conftest import ROLES, SUBMISSION, log_in

PAGES = {
    "overview": "/",
    "map": "/map",
    "map-corrected": "/map?measure=corrected&sort=cases&order=asc",
    "curves": "/curves",
    "curves-area": "/curves?measure=corrected&country=KHM&area=KH-1",
    "quality": "/quality",
    "submissions": "/submissions",
    "submission": f"/submissions/{SUBMISSION}",
    "agreements": "/agreements",
    "log": "/log",
}
# Pages refused, with the policy's reason; every other page is 200.
REFUSED = {
    "admin": {},
    "analyst": {},
    "khm_manager": {},
    "khm_epi": {},
    "lao_manager": {"submission": "not_your_country", "curves-area": "not_shared"},
    "observer": {
        "submissions": "role_not_allowed",
        "submission": "role_not_allowed",
        "curves-area": "not_shared",
    },
}
MAX_PAGE_BYTES = 300_000


@pytest.mark.parametrize("who", sorted(ROLES))
def test_every_role_opens_every_page(
    client: TestClient, tokens: dict[str, str], hub: Hub, who: str
) -> None:
    log_in(client, who, tokens[who])
    for name, path in PAGES.items():
        answer = client.get(path)
        reason = REFUSED[who].get(name)
        assert answer.status_code == (403 if reason else 200), (who, name, answer.text[-800:])
        assert "Traceback" not in answer.text
        assert len(answer.content) < MAX_PAGE_BYTES, (name, len(answer.content))
        assert answer.headers["content-type"].startswith("text/html")
        if reason:
            assert "You may not see this page" in answer.text
            assert f"<code>{reason}</code>" in answer.text
    # Each page's decision is in the access log, refusals too.
    t = access_log_table
    with hub.context.store.engine.connect() as c:
        logged = list(c.execute(select(t).where(t.c.principal == who)))
    assert {r.resource for r in logged} >= {"web/map", "web/quality", "web/log"}
    assert all(r.allowed for r in logged) == (not REFUSED[who])


def test_partners_see_only_what_agreements_share(
    client: TestClient, tokens: dict[str, str]
) -> None:
    # KHM's agreement does not allow onward sharing: only KHM's people and the hub see it.
    for who, sees in [
        ("khm_epi", True),
        ("admin", True),
        ("observer", False),
        ("lao_manager", False),
    ]:
        client.cookies.clear()
        log_in(client, who, tokens[who])
        page = client.get("/map").text
        assert ('data-area="KH-1"' in page) == sees, who
        assert ("KH-25" in page) == sees, who


def test_no_page_links_outside_the_hub(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "admin", tokens["admin"])
    pages = [*PAGES.values(), "/login", "/map?lang=km", "/curves?lang=vi"]
    for path in pages:
        text = client.get(path).text
        outside = [
            u
            for u in re.findall(r"https?://[^\s\"'<>]+", text)
            if not u.startswith("http://testserver")
        ]
        assert outside == [], (path, outside)
        assert "//" not in "".join(re.findall(r'(?:src|href)="(//[^"]*)"', text)), path
    css = client.get("/static/style.css").text
    assert "http://" not in css and "https://" not in css
    assert 'url("fonts/' in css


def test_static_fonts_are_served(client: TestClient) -> None:
    css = client.get("/static/style.css").text
    fonts = re.findall(r'url\("(fonts/[^"]+\.woff)"\)', css)
    assert {f.split("/")[1].split("-")[0] for f in fonts} == {
        "NotoSans",
        "NotoSansKhmer",
        "NotoSansLao",
        "NotoSansThai",
    }
    for font in fonts:
        answer = client.get(f"/static/{font}")
        assert answer.status_code == 200, font
        assert answer.content[:4] == b"wOFF"
        assert len(answer.content) < 60_000
    assert client.get("/static/fonts/OFL.txt").text.count("SIL OPEN FONT LICENSE") >= 1
    assert client.get("/static/app.js").status_code == 200


def test_refused_submission_explains_why(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "khm_manager", tokens["khm_manager"])
    missing = client.get("/submissions/no-such-submission")
    assert missing.status_code == 404
    assert "no-such-submission" in missing.text and "Traceback" not in missing.text
    detail = client.get(f"/submissions/{SUBMISSION}").text
    assert "Accepted" in detail and "KHM-HUB-DENGUE-COUNTS" in detail


def test_a_broken_hub_folder_is_explained(
    client: TestClient, tokens: dict[str, str], hub: Hub, folder: Path
) -> None:
    log_in(client, "admin", tokens["admin"])
    (folder / FILE_NAME).write_text("country,disease\nKHM\n", encoding="utf-8")
    answer = client.get("/map")
    assert answer.status_code == 500
    assert "The hub cannot show this page" in answer.text and FILE_NAME in answer.text
    assert "Traceback" not in answer.text
    # A hub without a folder cannot keep a session secret: said plainly, API unaffected.
    with TestClient(create_app(hub.context, Clock(NOW))) as bare:
        page = bare.get("/login")
        assert page.status_code == 500 and "session secret" in page.text
        assert bare.get("/v1/versions").status_code == 200


def test_quality_page_answers_while_slow_scorecards_are_computed(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At regional scale scoring takes the database tens of seconds: the page does not
    wait for it; it says the scorecards are being computed, then shows them."""
    from epibridge.hub import quality
    from epibridge.web import pages_quality

    release = threading.Event()
    compute = quality._compute

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return compute(*args, **kwargs)

    quality._CACHE.clear()
    monkeypatch.setattr(quality, "_compute", slow)
    monkeypatch.setattr(pages_quality, "WAIT_SECONDS", 0.1)
    log_in(client, "analyst", tokens["analyst"])
    pending = client.get("/quality")
    assert pending.status_code == 200
    assert "The scorecards are being computed" in pending.text
    assert "Regional median" not in pending.text
    release.set()
    monkeypatch.setattr(pages_quality, "WAIT_SECONDS", 30.0)
    ready = client.get("/quality")
    assert "Regional median" in ready.text and "being computed" not in ready.text
    assert "newer submissions are being scored" not in ready.text
    # a newer state (as after a submission) is computed in the background while the
    # page shows the scorecards it holds, saying from when they are
    again = threading.Event()
    monkeypatch.setattr(quality, "state", lambda engine, at: ("a later state",))
    monkeypatch.setattr(pages_quality, "WAIT_SECONDS", 0.1)

    def slower(*args: Any, **kwargs: Any) -> Any:
        again.wait(30)
        return compute(*args, **kwargs)

    monkeypatch.setattr(quality, "_compute", slower)
    stale = client.get("/quality")
    again.set()
    assert "newer submissions are being scored" in stale.text
    assert "Regional median" in stale.text
    monkeypatch.setattr(pages_quality, "WAIT_SECONDS", 30.0)
    assert "newer submissions" not in client.get("/quality").text  # done before teardown
