"""In a real browser: the analyst verifies an alert, Cambodia acknowledges it, the
analyst downloads the weekly bulletin."""

from __future__ import annotations

from datetime import date

from epibridge.hub.alert_signals import Signal
from epibridge.hub.alerts import raise_alerts
from tests.browser.conftest import ARTIFACTS, Watched, log_in
from tests.hub.test_intake import NOW, Hub

WEEK = date(2026, 1, 5)


def _raise(hub: Hub) -> str:
    signal = Signal(
        "cluster",
        "DENGUE",
        "space-time permutation scan",
        ("KH-20", "VN-N80"),
        ("KHM", "VNM"),
        WEEK,
        WEEK,
        p_value=0.02,
        observed=40.0,
        expected=9.0,
    )
    (made,) = raise_alerts(hub.context.store.engine, [signal], NOW).created
    return made


def test_an_alert_is_verified_then_acknowledged_by_a_country(
    served: str, tokens: dict[str, str], watched: Watched, hub: Hub
) -> None:
    alert_id = _raise(hub)
    page = watched.page
    log_in(watched, served, "analyst", tokens["analyst"])
    page.goto(f"{served}/alerts")
    page.click(f"a[href='/alerts/{alert_id}']")
    for status in ("under_review", "verified"):
        page.select_option("select[name=status]", status)
        page.click("form[action$='/status'] button[type=submit]")
        page.wait_for_load_state("networkidle")
    assert "verified" in page.locator("main").inner_text()
    watched.shot("alert-verified-by-analyst")
    page.context.clear_cookies()  # the next person, on the same browser

    log_in(watched, served, "khm_epi", tokens["khm_epi"])
    page.goto(f"{served}/alerts/{alert_id}")
    page.fill("form[action$='/ack'] input[name=by]", "Dr Sok, duty officer")
    page.click("form[action$='/ack'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "Dr Sok, duty officer" in page.locator("main").inner_text()
    watched.shot("alert-acknowledged-by-khm")


def test_the_analyst_downloads_the_weekly_bulletin(
    served: str, tokens: dict[str, str], watched: Watched
) -> None:
    page = watched.page
    log_in(watched, served, "analyst", tokens["analyst"])
    page.goto(f"{served}/bulletin?week=2026-W02")
    for fmt in ("html", "pdf"):
        page.check(f"input[name=format][value={fmt}]")
        with page.expect_download() as caught:
            page.click("form[action='/bulletin/download'] button[type=submit]")
        download = caught.value
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / download.suggested_filename
        download.save_as(str(target))
        data = target.read_bytes()
        assert download.suggested_filename.endswith(f"2026-W02.{fmt}")
        if fmt == "pdf":
            assert data.startswith(b"%PDF")
        else:
            assert b"<svg" in data and b"2026-W02" in data
    watched.shot("bulletin-form")
