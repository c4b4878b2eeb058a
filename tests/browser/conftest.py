"""A real HTTP hub (uvicorn in a thread) with the dashboard's test data, and Chromium.

The browser is Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven
by Playwright; ``EPIBRIDGE_CHROMIUM`` names another binary. Every page a test opens is
watched: a console error or an uncaught page error fails the test. Screenshots go to
``test-artifacts/browser/`` (kept by CI as artifacts; ignored by git).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from epibridge.hub.app import create_app
from epibridge.hub.serve import free_local_port
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.web.conftest import folder, hub, tokens, url, world  # noqa: F401 (fixtures)

CHROMIUM = Path(os.environ.get("EPIBRIDGE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: install Debian's chromium (.ci/run does) or set "
            "EPIBRIDGE_CHROMIUM"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def served(hub: Hub, tokens: dict[str, str], folder: Path) -> Iterator[str]:  # noqa: F811
    """The hub's app on a free local port, for the duration of a test."""
    app = create_app(replace(hub.context, folder=folder), Clock(NOW))
    port = free_local_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        pytest.fail("the hub did not start within 20 s")
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Watched:
    """A browser page whose console errors and page errors are collected."""

    page: Page
    errors: list[str] = field(default_factory=list)
    document_status: int = 0  # of the last page loaded in the main frame

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # A refused page (403 with its explanation) is logged by Chromium as a failed
        # load; that is the page the test asked for, not an error of the page.
        if "status of 403" in message.text and seen.document_status == 403:
            return
        seen.errors.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        request = response.request
        if request.is_navigation_request() and request.frame == page.main_frame:
            seen.document_status = response.status
        elif response.status == 404 or response.status >= 500:
            seen.errors.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: seen.errors.append(f"page error: {error}"))
    yield seen
    context.close()
    assert not seen.errors, seen.errors


def log_in(watched: Watched, base: str, name: str, token: str) -> None:
    page = watched.page
    page.goto(f"{base}/login")
    page.fill("#username", name)
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, page.content()[:500]
