"""The IHR Annex 2 worksheet: pre-filled figures against a hand count, completion and
signature (event, log leaf, audit, hub signature), and who may read and sign it through
the API. SQLite and PostgreSQL (the ``hub`` fixture's ``url``)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from epibridge.cli import app
from epibridge.hub.access import Principal
from epibridge.hub.alert_signals import Signal
from epibridge.hub.alert_store import AlertError, events, get_alert
from epibridge.hub.alerts import raise_alerts, set_status
from epibridge.hub.app import create_app
from epibridge.hub.audit import audit_verify
from epibridge.hub.ihr import (
    QUESTIONS,
    WORKSHEET_TYPE,
    Reply,
    complete,
    completions,
    prefill,
    sign_worksheet,
)
from epibridge.hub.tables import log_entries_table
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.transport.keys import verify_compact
from tests.hub import test_access, test_intake
from tests.hub.payloads import release_cell, release_parts
from tests.hub.test_app import Clock, _token
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import B, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url
tokens = test_access.tokens

W1 = date(2025, 12, 29)  # ISO 2026-W01
W2 = date(2026, 1, 5)  # ISO 2026-W02
AREAS = ("KH-20", "KH-21", "VN-N80")


def _cell(
    area: str, start: date, cases: int | None, deaths: int | None = None, **kw: Any
) -> dict[str, Any]:
    return release_cell(area, start, cases, deaths, sex=kw.get("sex"))


def counts() -> pa.Table:
    """In the alert (KH-20, KH-21; weeks 2026-W01, W02): 10 + 20 + 5 cases, one cell
    withheld, 1 death among the 30 cases of the cells reporting deaths. Outside it: a sex
    stratum, another province, and the same weeks of 2025 (3 + 4) and 2024 (6)."""
    return pa.Table.from_pylist(
        [
            _cell("KH-20", W1, 10, 1),
            _cell("KH-20", W2, 20, 0),
            _cell("KH-21", W1, 5),
            _cell("KH-21", W2, None),
            _cell("KH-20", W2, 7, sex="M"),
            _cell("KH-1", W2, 100, 50),
            _cell("KH-20", date(2024, 12, 30), 3),
            _cell("KH-20", date(2025, 1, 6), 4),
            _cell("KH-21", date(2024, 1, 1), 6),
            _cell("KH-21", date(2023, 3, 6), 99),  # another week of 2023
        ],
        RELEASE_COUNTS,
    )


def line_list(folder: Path) -> Path:
    """Four cases in the alert's areas and weeks: one imported from Viet Nam, two local,
    one not said; outside: an imported case elsewhere and one in an earlier week."""
    rows = [
        ("KH-20", "2026-W02", 1, True, "VNM"),
        ("KH-20", "2026-W01", 2, False, None),
        ("KH-21", "2026-W02", 1, None, None),
        ("KH-1", "2026-W02", 1, True, "THA"),
        ("KH-20", "2025-W50", 1, True, "VNM"),
    ]
    table = pa.table(
        {
            "country": ["KHM"] * len(rows),
            "area": [r[0] for r in rows],
            "disease": ["DENGUE"] * len(rows),
            "period": [r[1] for r in rows],
            "case_count": pa.array([r[2] for r in rows], pa.int32()),
            "imported": pa.array([r[3] for r in rows], pa.bool_()),
            "country_of_infection": [r[4] for r in rows],
        }
    )
    path = folder / "cases.parquet"
    pq.write_table(table, path)
    return path


def border_cluster(areas: tuple[str, ...]) -> Signal:
    """A KHM-VNM dengue cluster over 2026-W01..W02 (40 cases where 9 were expected)."""
    return Signal(
        "cluster",
        "DENGUE",
        "space-time permutation scan",
        areas,
        ("KHM", "VNM"),
        W1,
        W2,
        p_value=0.004,
        observed=40.0,
        expected=9.0,
        figures={"relative_risk": 4.4, "recurrence_interval_weeks": 250.0},
    )


def _alert(hub: Hub, tmp_path: Path) -> str:
    parts = release_parts(tmp_path / "parts", hub.agreement, table=counts())
    parts.append(("cases.parquet", line_list(tmp_path / "parts")))
    _send(hub, tmp_path, B, counts(), at_hours=0, parts=parts)
    cluster = border_cluster(AREAS)
    alarm = Signal("temporal", "DENGUE", "noufaily", ("KH-20",), ("KHM",), W2, W2, 0.002, 12.0, 3.5)
    engine = hub.context.store.engine
    (alert_id,) = raise_alerts(engine, [cluster, alarm], NOW).created
    return alert_id


def _leaves(engine: Engine) -> int:
    with engine.connect() as c:
        return int(
            c.execute(select(func.count()).where(log_entries_table.c.kind == "alert")).scalar_one()
        )


def _replies(**answers: str) -> dict[str, Reply]:
    return {q: Reply(answers.get(q, "yes"), f"because of {q}") for q in QUESTIONS}


def test_prefill_matches_a_hand_count(hub: Hub, tmp_path: Path) -> None:
    engine = hub.context.store.engine
    alert = get_alert(engine, _alert(hub, tmp_path))
    sheet = prefill(engine, alert, NOW + timedelta(hours=1))
    found = {q["id"]: q["evidence"] for q in sheet["questions"]}
    assert list(found) == list(QUESTIONS)
    assert (sheet["first_week"], sheet["last_week"], sheet["weeks"]) == ("2026-W01", "2026-W02", 2)
    serious = found["serious"]
    assert (serious["cases"], serious["deaths"], serious["withheld_cells"]) == (35, 1, 1)
    assert serious["cells"] == 4
    assert serious["case_fatality_ratio"] == pytest.approx(1 / 30)
    assert [(a["area"], a["cases"], a["deaths"]) for a in serious["by_area"]] == [
        ("KH-20", 30, 1),
        ("KH-21", 5, None),
    ]
    earlier = [(e["first_week"], e["cases"]) for e in serious["earlier_years"]]
    assert earlier == [
        ("2025-W01", 7),
        ("2024-W01", 6),
        ("2023-W01", None),
        ("2022-W01", None),
        ("2021-W01", None),
    ]
    assert serious["earlier_mean_cases"] == pytest.approx(6.5)
    assert serious["ratio_to_earlier_mean"] == pytest.approx(35 / 6.5)
    unusual = found["unusual"]
    assert (unusual["min_p_value"], unusual["cluster_p_value"]) == (0.002, 0.004)
    assert (unusual["relative_risk"], unusual["recurrence_interval_weeks"]) == (4.4, 250.0)
    assert (unusual["temporal_alarms"], unusual["temporal_min_p_value"]) == (1, 0.002)
    assert unusual["observed_to_expected"] == pytest.approx(52 / 12.5)
    spread = found["spread"]
    assert spread["cross_border"] and spread["countries"] == ["KHM", "VNM"]
    assert spread["line_list"] == {
        "held": True,
        "cases": 4,
        "imported": 1,
        "import_status_unknown": 1,
        "countries_of_infection": {"VNM": 1},
    }
    borders = {(b["area"], b["neighbour"]): b for b in spread["borders"]}
    assert borders[("KH-20", "VN-N80")]["neighbour_in_alert"] is True
    assert all(b["country"] != b["neighbour_country"] for b in spread["borders"])
    assert all(b["area"] in AREAS for b in spread["borders"])
    # A reader who may not see Viet Nam's data is told so; nothing else changes here.
    assert prefill(engine, alert, NOW + timedelta(hours=1), frozenset({"KHM"}))[
        "counts_withheld_for"
    ] == ["VNM"]
    assert sheet["counts_withheld_for"] == []
    # Counts of a country not visible are left out.
    hidden = prefill(engine, alert, NOW + timedelta(hours=1), frozenset({"LAO"}))
    assert hidden["questions"][0]["evidence"]["cases"] is None
    assert hidden["questions"][2]["evidence"]["line_list"]["held"] is False


def test_signed_worksheet_is_an_event_a_leaf_and_verifies(hub: Hub, tmp_path: Path) -> None:
    engine = hub.context.store.engine
    alert_id = _alert(hub, tmp_path)
    before = _leaves(engine)
    epi = Principal("khm_epi", "country_epidemiologist", "KHM")
    at = NOW + timedelta(hours=2)
    done = complete(
        engine, alert_id, _replies(restrictions="no", unusual="unknown"), epi, at, context="none"
    )
    assert (done["criteria_met"], done["notify_who"]) == (2, True)
    assert done["signed_by"] == "khm_epi" and done["country"] == "KHM"
    assert done["answers"]["restrictions"] == {
        "answer": "no",
        "justification": "because of restrictions",
    }
    assert _leaves(engine) == before + 1
    with engine.connect() as c:
        last = events(c, alert_id)[-1]
        stored = completions(c, alert_id)
    assert (last.kind, last.actor) == ("ihr_signed", "khm_epi")
    assert stored == [done]
    report = audit_verify(engine, hub.context.trust, progress=lambda _: None)
    assert report.problems == []
    token = sign_worksheet(stored[0], hub.context.signing_key, at)
    public = hub.context.signing_key.private_key.public_key()
    claims = verify_compact(token, public, WORKSHEET_TYPE)
    assert claims["worksheet"] == done and claims["hub_kid"] == hub.context.signing_key.kid
    with pytest.raises(ValueError, match="signature check failed"):
        verify_compact(token, hub.world.khm_key.private_key.public_key(), WORKSHEET_TYPE)
    one = complete(engine, alert_id, _replies(serious="no", unusual="no", spread="no"), epi, at)
    assert (one["criteria_met"], one["notify_who"]) == (1, False)


@pytest.mark.parametrize(
    ("who", "replies", "reason"),
    [
        (Principal("lao", "country_data_manager", "LAO"), _replies(), "not_your_country"),
        (Principal("node", "node", "KHM"), _replies(), "role_not_allowed"),
        (Principal("analyst", "hub_analyst", None), _replies(), "role_not_allowed"),
        (
            Principal("khm", "country_data_manager", "KHM"),
            {**_replies(), "spread": Reply("yes", "  ")},
            "invalid_request",
        ),
        (
            Principal("khm", "country_data_manager", "KHM"),
            {**_replies(), "serious": Reply("maybe", "x")},
            "invalid_request",
        ),
        (
            Principal("khm", "country_data_manager", "KHM"),
            {q: r for q, r in _replies().items() if q != "spread"},
            "invalid_request",
        ),
    ],
)
def test_who_cannot_sign_and_what_is_refused(
    hub: Hub, tmp_path: Path, who: Principal, replies: dict[str, Reply], reason: str
) -> None:
    engine = hub.context.store.engine
    alert_id = _alert(hub, tmp_path)
    before = _leaves(engine)
    with pytest.raises(AlertError) as caught:
        complete(engine, alert_id, replies, who, NOW)
    assert caught.value.reason == reason
    assert _leaves(engine) == before


def test_ihr_api_authorization(hub: Hub, tmp_path: Path, tokens: dict[str, str]) -> None:
    alert_id = _alert(hub, tmp_path)
    client = TestClient(create_app(hub.context, Clock(NOW)))
    tokens = {**tokens, "node": _token(client, hub.world.khm_key, "KHM")}
    path = f"/v1/alerts/{alert_id}/ihr"

    def call(who: str, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        answer = client.request(
            method, path, headers={"Authorization": f"Bearer {tokens[who]}"}, json=body
        )
        return answer.status_code, answer.json()

    seen = {who: call(who, "GET") for who in tokens}
    assert {w for w, (s, _) in seen.items() if s == 200} == {
        "hub_admin",
        "hub_analyst",
        "khm_data_manager",
        "khm_epidemiologist",
        "node",
    }
    assert seen["lao_data_manager"][1]["reason"] == "not_your_country"
    assert seen["observer"][1]["reason"] == "not_verified"
    sheet = seen["khm_epidemiologist"][1]["worksheet"]
    assert sheet["questions"][0]["evidence"]["cases"] == 35
    assert sheet["counts_withheld_for"] == ["VNM"]
    answers = {q: {"answer": "yes", "justification": "seen"} for q in QUESTIONS}
    body: dict[str, Any] = {"answers": answers, "context": "border market"}
    refused = {
        who: call(who, "POST", body)
        for who in ("hub_admin", "hub_analyst", "node", "lao_data_manager", "observer")
    }
    assert {w: r[1]["reason"] for w, r in refused.items()} == {
        "hub_admin": "role_not_allowed",
        "hub_analyst": "role_not_allowed",
        "node": "role_not_allowed",
        "lao_data_manager": "not_your_country",
        "observer": "role_not_allowed",
    }
    assert all(status == 403 for status, _ in refused.values())
    status, signed = call("khm_epidemiologist", "POST", body)
    assert status == 200, signed
    public = hub.context.signing_key.private_key.public_key()
    claims = verify_compact(signed["document"], public, WORKSHEET_TYPE)
    assert claims["worksheet"]["signed_by"] == "khm_epidemiologist"
    assert claims["worksheet"]["context"] == "border market"
    blank = {
        **body,
        "answers": {**answers, "spread": {"answer": "no", "justification": " "}},
    }
    status, answer = call("khm_data_manager", "POST", blank)
    assert status == 400 and answer["reason"] == "invalid_request"
    missing = {"answers": {"serious": {"answer": "yes", "justification": "x"}}}
    assert call("khm_data_manager", "POST", missing)[0] == 400
    # The hub's roles read every completion; a country its own; an observer none.
    assert len(call("hub_analyst", "GET")[1]["completions"]) == 1
    assert len(call("node", "GET")[1]["completions"]) == 1
    set_status(hub.context.store.engine, alert_id, "under_review", "a", NOW)
    set_status(hub.context.store.engine, alert_id, "verified", "a", NOW)
    status, seen_by_observer = call("observer", "GET")
    assert status == 200 and seen_by_observer["completions"] == []
    assert client.get(path).status_code == 401


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_hub_alerts_ihr_on_the_command_line(hub: Hub, tmp_path: Path, url: str) -> None:
    alert_id = _alert(hub, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    runner = CliRunner()
    at = (NOW + timedelta(hours=1)).isoformat()
    args = ["hub", "alerts", "ihr", alert_id, "--as-of", at, "--home", str(home)]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    sheet = json.loads(shown.stdout)
    assert sheet["alert_id"] == alert_id and sheet["questions"][0]["evidence"]["cases"] == 35
    out = tmp_path / "ihr.json"
    written = runner.invoke(app, [*args, "--out", str(out)])
    assert written.exit_code == 0 and json.loads(out.read_text(encoding="utf-8")) == sheet
    missing = runner.invoke(app, ["hub", "alerts", "ihr", "no-such", "--home", str(home)])
    assert isinstance(missing.exception, AlertError) and missing.exception.reason == "unknown_alert"
