"""Every role against every read endpoint: 200 where the policy allows, 403 where not,
and every decision in the access log. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from epibridge.hub.access import ACTIONS, ROLES, Principal, decide
from epibridge.hub.app import create_app
from epibridge.hub.users import add_user, revoke_user
from tests.hub import test_intake
from tests.hub.payloads import counts_table
from tests.hub.test_app import Clock, _token
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

ENDPOINTS = {
    "regional": "/v1/regional/counts",
    "fhir": "/v1/regional/counts.fhir",
    "incidence": "/v1/regional/incidence",
    "burden": "/v1/regional/burden",
    "reporting": "/v1/regional/reporting",
    "denominators": "/v1/regional/denominators",
    "submissions": "/v1/submissions",
    "status": f"/v1/submissions/{A}",
    "rejections": "/v1/rejections",
    "access-log": "/v1/access-log",
    "alerts": "/v1/alerts",
    "alerts-inbox": "/v1/alerts/inbox",
}
# Who gets what (KHM's data; LAO's data manager is another country's user).
ALLOWED = {
    "hub_admin": {
        "regional",
        "fhir",
        "incidence",
        "burden",
        "reporting",
        "denominators",
        "submissions",
        "status",
        "rejections",
        "access-log",
        "alerts",
    },
    "hub_analyst": {
        "regional",
        "fhir",
        "incidence",
        "burden",
        "reporting",
        "denominators",
        "submissions",
        "status",
        "rejections",
        "alerts",
    },
    "khm_data_manager": {
        "regional",
        "fhir",
        "incidence",
        "burden",
        "reporting",
        "denominators",
        "submissions",
        "status",
        "rejections",
        "alerts",
        "alerts-inbox",
    },
    "khm_epidemiologist": {
        "regional",
        "fhir",
        "incidence",
        "burden",
        "reporting",
        "denominators",
        "submissions",
        "status",
        "alerts",
        "alerts-inbox",
    },
    "lao_data_manager": {
        "regional",
        "fhir",
        "incidence",
        "burden",
        "reporting",
        "denominators",
        "submissions",
        "rejections",
        "alerts",
        "alerts-inbox",
    },
    "observer": {"regional", "fhir", "incidence", "burden", "reporting", "denominators", "alerts"},
    "node": {"submissions", "status", "rejections", "alerts", "alerts-inbox"},
}


@pytest.fixture
def tokens(hub: Hub, tmp_path: Path) -> dict[str, str]:
    _send(hub, tmp_path, A, counts_table(4, seed=1), at_hours=0)
    engine = hub.context.store.engine
    made = {}
    for name, role, country in (
        ("hub_admin", "hub_admin", None),
        ("hub_analyst", "hub_analyst", None),
        ("khm_data_manager", "country_data_manager", "KHM"),
        ("khm_epidemiologist", "country_epidemiologist", "KHM"),
        ("lao_data_manager", "country_data_manager", "LAO"),
        ("observer", "observer", None),
    ):
        made[name] = add_user(engine, name, role, country, NOW)[1]
    return made


def _client(hub: Hub) -> TestClient:
    return TestClient(create_app(hub.context, Clock(NOW)))


def test_the_authorization_matrix(hub: Hub, tokens: dict[str, str]) -> None:
    client = _client(hub)
    tokens = {**tokens, "node": _token(client, hub.world.khm_key, "KHM")}
    for who, token in tokens.items():
        for name, path in ENDPOINTS.items():
            answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
            expected = 200 if name in ALLOWED[who] else 403
            assert answer.status_code == expected, (who, name, answer.json())
            if expected == 403:
                assert answer.json()["reason"] in {"role_not_allowed", "not_your_country"}
    for name, path in ENDPOINTS.items():
        assert client.get(path).status_code == 401, name
    log = client.get("/v1/access-log", headers={"Authorization": f"Bearer {tokens['hub_admin']}"})
    entries = log.json()["entries"]
    assert any(not e["allowed"] and e["principal"] == "observer" for e in entries)
    assert {e["reason"] for e in entries} >= {"allowed", "role_not_allowed", "not_your_country"}


def test_partners_see_only_what_agreements_share(hub: Hub, tokens: dict[str, str]) -> None:
    client = _client(hub)

    def cells(who: str, **params: str) -> dict[str, object]:
        answer = client.get(
            "/v1/regional/counts",
            params=params,
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        assert answer.status_code == 200
        body: dict[str, object] = answer.json()
        return body

    assert len(cells("hub_analyst")["cells"]) == 4  # type: ignore[arg-type]
    assert len(cells("khm_epidemiologist")["cells"]) == 4  # type: ignore[arg-type]
    assert hub.agreement.onward_sharing is False
    lao = cells("lao_data_manager", country="KHM")
    assert lao["cells"] == [] and lao["withheld"] == ["KHM"]
    assert cells("observer")["cells"] == []
    # Once KHM's agreement allows onward sharing, partners see KHM's cells.
    shared = replace(hub.agreement, onward_sharing=True)
    context = replace(
        hub.context, agreements={shared.id: (shared, hub.context.agreements[shared.id][1])}
    )
    client = TestClient(create_app(context, Clock(NOW)))
    assert len(cells("lao_data_manager")["cells"]) == 4  # type: ignore[arg-type]
    assert len(cells("observer")["cells"]) == 4  # type: ignore[arg-type]


def test_people_cannot_send_and_revoked_tokens_stop(hub: Hub, tokens: dict[str, str]) -> None:
    client = _client(hub)
    admin = {"Authorization": f"Bearer {tokens['hub_admin']}"}
    sent = client.put(f"/v1/submissions/{A}", content=b"x", headers=admin)
    assert sent.status_code == 403 and sent.json()["reason"] == "node_only"
    revoke_user(hub.context.store.engine, "observer", NOW)
    gone = client.get(
        ENDPOINTS["regional"], headers={"Authorization": f"Bearer {tokens['observer']}"}
    )
    assert gone.status_code == 401


def test_the_policy_is_total() -> None:
    """Every role and action has an answer; country roles never read another's submissions."""
    for role in ROLES:
        country = (
            "KHM" if role in {"country_data_manager", "country_epidemiologist", "node"} else None
        )
        who = Principal("x", role, country)
        for action in ACTIONS:
            decision = decide(who, action, "LAO")
            if action in ("submissions.read", "rejections.read") and country:
                assert not decision.allowed
