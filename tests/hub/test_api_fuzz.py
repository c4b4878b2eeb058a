"""The hub's API fuzzed with schemathesis against its own OpenAPI description: whatever
is sent, the answer is never a server error (5xx). Runs with a hub administrator's token
(the widest access) on a hub holding data, and without a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from sqlalchemy.engine import make_url

from epibridge.hub.app import create_app
from epibridge.hub.users import add_user
from tests.hub import test_intake
from tests.hub.payloads import counts_table
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send

world = test_intake.world
CALLS: list[int] = []


@pytest.fixture
def url(tmp_path: Path) -> str:
    """SQLite only: the fuzzer's thousands of requests test the API, not the database."""
    return str(make_url(f"sqlite:///{tmp_path / 'hub.sqlite'}"))


hub = test_intake.hub


@pytest.fixture
def api(hub: Hub, tmp_path: Path) -> schemathesis.BaseSchema:
    _send(hub, tmp_path, A, counts_table(5), at_hours=0)
    app = create_app(hub.context, Clock(NOW))
    return schemathesis.openapi.from_asgi("/v1/openapi.json", app)


@pytest.fixture
def admin(hub: Hub) -> str:
    return add_user(hub.context.store.engine, "fuzz-admin", "hub_admin", None, NOW)[1]


def test_no_server_error(api: schemathesis.BaseSchema, admin: str) -> None:
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15  # every route is described
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Case[Any]) -> None:
            for headers in ({"Authorization": f"Bearer {admin}"}, {}):
                response = case.call(headers=headers)
                CALLS.append(response.status_code)
                case.validate_response(response, checks=[not_a_server_error])

        fuzz()
    # The fuzzer really called the API, and saw refusals as well as successes.
    assert len(CALLS) > 200
    assert {200, 400, 401} <= set(CALLS) or {200, 401, 422} <= set(CALLS)
