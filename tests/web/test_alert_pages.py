"""The alert pages: the inbox per role, one alert's page and its forms (CSRF, the API's
policy, events recorded), and the IHR Annex 2 worksheet filled from the data and signed."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from epibridge.hub.alert_delivery import acknowledge, deliveries, escalate_overdue
from epibridge.hub.alert_signals import Signal
from epibridge.hub.alert_store import events, get_alert
from epibridge.hub.alerts import raise_alerts, set_status
from epibridge.hub.audit import audit_verify
from epibridge.hub.tables import log_entries_table
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.web.pages_alerts_view import country_states
from tests.hub.payloads import release_cell
from tests.hub.test_ihr import border_cluster
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import _send
from tests.web.conftest import csrf_of, log_in

W1 = date(2025, 12, 29)  # ISO 2026-W01
W2 = date(2026, 1, 5)  # ISO 2026-W02
DEATHS = "eeeeeeee-0000-4000-8000-000000000002"


def _cell(area: str, start: date, cases: int, deaths: int) -> dict[str, object]:
    return release_cell(area, start, cases, deaths)


@pytest.fixture
def raised(hub: Hub, tokens: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Three alerts: KHM's (new), LAO's (new), and a cross-border KHM-VNM cluster over
    Svay Rieng (KH-20: 40 cases, 2 deaths in 2026-W01..W02), an early warning sent at once."""
    cells = [_cell("KH-20", W1, 15, 2), _cell("KH-20", W2, 25, 0)]
    _send(hub, tmp_path, DEATHS, pa.Table.from_pylist(cells, RELEASE_COUNTS), at_hours=0)
    engine = hub.context.store.engine

    def alarm(area: str, country: str) -> Signal:
        return Signal("temporal", "DENGUE", "noufaily", (area,), (country,), W2, W2, 0.002, 20, 5)

    cluster = border_cluster(("KH-20", "VN-N80"))
    (khm,) = raise_alerts(engine, [alarm("KH-1", "KHM")], NOW).created
    (lao,) = raise_alerts(engine, [alarm("LA-AT", "LAO")], NOW).created
    (cross,) = raise_alerts(engine, [cluster], NOW).created
    return {"khm": khm, "lao": lao, "cross": cross}


def _listed(page: str) -> list[str]:
    return re.findall(r'data-alert="([^"]+)"', page)


def test_the_inbox_shows_what_the_policy_allows(
    client: TestClient, tokens: dict[str, str], raised: dict[str, str], hub: Hub
) -> None:
    engine = hub.context.store.engine
    set_status(engine, raised["lao"], "under_review", "analyst", NOW)
    set_status(engine, raised["lao"], "discarded", "analyst", NOW)
    seen = {}
    for who in ("admin", "analyst", "khm_epi", "khm_manager", "lao_manager", "observer"):
        client.cookies.clear()
        log_in(client, who, tokens[who])
        answer = client.get("/alerts")
        assert answer.status_code == 200 and "Traceback" not in answer.text
        seen[who] = _listed(answer.text)
    assert seen["admin"] == seen["analyst"]
    assert set(seen["admin"]) == set(raised.values())
    assert seen["admin"][-1] == raised["lao"]  # discarded after the open ones
    assert set(seen["khm_epi"]) == set(seen["khm_manager"]) == {raised["khm"], raised["cross"]}
    assert seen["lao_manager"] == [raised["lao"]]
    assert seen["observer"] == []
    set_status(engine, raised["khm"], "under_review", "analyst", NOW)
    set_status(engine, raised["khm"], "verified", "analyst", NOW)
    page = client.get("/alerts").text
    assert _listed(page) == [raised["khm"]]
    # The row: names in both scripts, kind, weeks, p-value, status, deliveries.
    client.cookies.clear()
    log_in(client, "admin", tokens["admin"])
    page = client.get("/alerts").text
    assert "Svay Rieng" in page and "ស្វាយរៀង" in page and "Tây Ninh" in page
    assert "space-time cluster" in page and "2026-W01 \u2013 2026-W02" in page
    assert "0.004" in page and "KHM: sent" in page and "VNM: sent" in page
    assert _listed(client.get("/alerts?status=discarded").text) == [raised["lao"]]
    assert _listed(client.get("/alerts?status=new&disease=DENGUE").text) == [raised["cross"]]
    assert _listed(client.get("/alerts?disease=CHOLERA").text) == []
    khmer = client.get("/alerts?lang=km").text
    assert "<h1>ការជូនដំណឹង</h1>" in khmer and "ចង្កោមលំហ-ពេលវេលា" in khmer
    vietnamese = client.get(f"/alerts/{raised['cross']}/ihr?lang=vi").text
    assert "<h1>Phiếu đánh giá Phụ lục 2 IHR</h1>" in vietnamese


def test_detail_page_and_review_by_the_hub(
    client: TestClient, tokens: dict[str, str], raised: dict[str, str], hub: Hub
) -> None:
    log_in(client, "analyst", tokens["analyst"])
    alert_id = raised["cross"]
    page = client.get(f"/alerts/{alert_id}").text
    assert "space-time permutation scan" in page and "4.4" in page and "250" in page
    assert "/map?disease=DENGUE&amp;week=2026-W02" in page
    assert "/curves?disease=DENGUE&amp;country=KHM&amp;area=KH-20" in page
    assert f"/alerts/{alert_id}/ihr" in page
    # Only the moves the lifecycle allows from "new" are offered.
    options = re.findall(r'<option value="([a-z_]+)">', page)
    assert options == ["under_review"]
    changed = client.post(
        f"/alerts/{alert_id}/status",
        data={"csrf": csrf_of(page), "status": "under_review", "note": "lab samples sent"},
        follow_redirects=False,
    )
    assert changed.status_code == 303 and changed.headers["location"] == f"/alerts/{alert_id}"
    engine = hub.context.store.engine
    with engine.connect() as c:
        last = events(c, alert_id)[-1]
    assert (last.kind, last.actor) == ("status_changed", "analyst")
    assert last.text == "new -> under_review: lab samples sent"
    page = client.get(f"/alerts/{alert_id}").text
    assert re.findall(r'<option value="([a-z_]+)">', page) == ["verified", "discarded"]
    # A move the lifecycle refuses: the detail again, with the reason, nothing recorded.
    refused = client.post(
        f"/alerts/{alert_id}/status", data={"csrf": csrf_of(page), "status": "closed"}
    )
    assert refused.status_code == 409 and "cannot go from under_review to closed" in refused.text
    for path, data in (("owner", {"owner": "Dr. Chan"}), ("comments", {"text": "see lab"})):
        done = client.post(
            f"/alerts/{alert_id}/{path}",
            data={"csrf": csrf_of(page), **data},
            follow_redirects=False,
        )
        assert done.status_code == 303
    assert get_alert(engine, alert_id).owner == "Dr. Chan"
    page = client.get(f"/alerts/{alert_id}").text
    assert "see lab" in page and "owner set" in page


def test_countries_acknowledge_but_do_not_review(
    client: TestClient, tokens: dict[str, str], raised: dict[str, str], hub: Hub
) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    engine = hub.context.store.engine
    page = client.get(f"/alerts/{raised['cross']}").text
    assert "/status" not in page and f"/alerts/{raised['cross']}/ack" in page
    # Curves only of the countries whose data KHM's staff may see.
    assert "country=KHM" in page and "country=VNM" not in page
    csrf = csrf_of(page)
    before = len(_events(hub, raised["cross"]))
    refused = client.post(
        f"/alerts/{raised['cross']}/status", data={"csrf": csrf, "status": "under_review"}
    )
    assert refused.status_code == 403 and "<code>role_not_allowed</code>" in refused.text
    assert len(_events(hub, raised["cross"])) == before
    done = client.post(
        f"/alerts/{raised['cross']}/ack",
        data={"csrf": csrf, "by": "Dr. Sok"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with engine.connect() as c:
        mine = deliveries(c, raised["cross"], "KHM")
        theirs = deliveries(c, raised["cross"], "VNM")
    assert [d.acknowledged_by for d in mine] == ["Dr. Sok"]
    assert [d.acknowledged_at for d in theirs] == [None]
    assert "KHM: acknowledged (Dr. Sok)" in client.get("/alerts").text
    other = client.post(f"/alerts/{raised['lao']}/ack", data={"csrf": csrf, "by": "Dr. Sok"})
    assert other.status_code == 403 and "<code>not_your_country</code>" in other.text
    assert "does not concern KHM" in other.text
    assert client.get(f"/alerts/{raised['lao']}").status_code == 403
    assert client.get("/alerts/no-such-alert").status_code == 404


def _events(hub: Hub, alert_id: str) -> list[str]:
    with hub.context.store.engine.connect() as c:
        return [e.kind for e in events(c, alert_id)]


def test_ihr_worksheet_prefilled_and_signed(
    client: TestClient, tokens: dict[str, str], raised: dict[str, str], hub: Hub
) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    path = f"/alerts/{raised['cross']}/ihr"
    page = client.get(path).text

    def figure(name: str, html: str) -> str:
        found = re.search(rf'data-figure="{name}">([^<]*)', html)
        assert found is not None, name
        return found.group(1).strip()

    assert figure("cases", page) == "40"
    assert figure("deaths", page) == "2"
    assert figure("cfr", page) == "5 %"
    assert figure("p", page) == "0.004"
    assert figure("cross-border", page).startswith("yes")
    assert "VNM: their data is not shared with you" in page
    assert "Svay Rieng" in page and "Tay Ninh" in page
    answers = {f"answer_{q}": "yes" for q in ("serious", "unusual", "spread")}
    form = {
        "csrf": csrf_of(page),
        **answers,
        "answer_restrictions": "unknown",
        **{f"justification_{q}": f"{q}: see figures" for q in ("serious", "unusual", "spread")},
        "justification_restrictions": " ",
    }
    engine = hub.context.store.engine
    before = _leaves(hub)
    blank = client.post(path, data=form)
    assert blank.status_code == 400 and "a justification is needed" in blank.text
    assert "serious: see figures" in blank.text  # what was typed is kept
    assert _leaves(hub) == before
    form["justification_restrictions"] = "no measures reported"
    signed = client.post(path, data=form, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == path
    assert _events(hub, raised["cross"])[-1] == "ihr_signed"
    assert _leaves(hub) == before + 1
    assert audit_verify(engine, hub.context.trust, progress=lambda _: None).problems == []
    page = client.get(path).text
    assert "Notify WHO: 3 of 4 criteria met." in page and "no measures reported" in page
    # A hub analyst reads it but cannot sign; LAO cannot open it.
    client.cookies.clear()
    log_in(client, "analyst", tokens["analyst"])
    page = client.get(path).text
    assert "Notify WHO" in page and 'name="answer_serious"' not in page
    refused = client.post(path, data={**form, "csrf": csrf_of(page)})
    assert refused.status_code == 403 and "<code>role_not_allowed</code>" in refused.text
    client.cookies.clear()
    log_in(client, "lao_manager", tokens["lao_manager"])
    assert client.get(path).status_code == 403


def _leaves(hub: Hub) -> int:
    with hub.context.store.engine.connect() as c:
        return int(
            c.execute(select(func.count()).where(log_entries_table.c.kind == "alert")).scalar_one()
        )


def test_a_post_without_csrf_is_refused(
    client: TestClient, tokens: dict[str, str], raised: dict[str, str], hub: Hub
) -> None:
    log_in(client, "analyst", tokens["analyst"])
    alert_id = raised["khm"]
    before = _events(hub, alert_id)
    for data in ({"status": "under_review"}, {"status": "under_review", "csrf": "forged"}):
        answer = client.post(f"/alerts/{alert_id}/status", data=data)
        assert answer.status_code == 403 and "Request refused" in answer.text
    assert client.post(f"/alerts/{alert_id}/ihr", data={}).status_code == 403
    assert _events(hub, alert_id) == before


def test_delivery_states_per_country(hub: Hub, raised: dict[str, str]) -> None:
    engine = hub.context.store.engine
    alert = get_alert(engine, raised["cross"])
    with engine.connect() as c:
        rows = deliveries(c, alert.alert_id)
    states = {s.country: s.state for s in country_states(alert, rows, NOW)}
    assert states == {"KHM": "sent", "VNM": "sent"}
    later = NOW + timedelta(hours=25)
    assert {s.state for s in country_states(alert, rows, later)} == {"overdue"}
    acknowledge(engine, alert.alert_id, "KHM", "Dr. Sok", "khm_epi", later)
    escalate_overdue(engine, later)
    with engine.connect() as c:
        rows = deliveries(c, alert.alert_id)
    found = {s.country: (s.state, s.by) for s in country_states(alert, rows, later)}
    assert found == {"KHM": ("acknowledged", "Dr. Sok"), "VNM": ("escalated", None)}
    khm = get_alert(engine, raised["khm"])
    assert [s.state for s in country_states(khm, [], later)] == ["not_sent"]
