"""Who may read what at the hub: one policy, decided server-side for every read.

Principals are people with an API token (``hub/users.py``) and nodes with a key-based
access token. Each has a role, and every role but the hub's own acts for one country.

| action | hub admin | hub analyst | data manager | epidemiologist | observer | node |
|---|---|---|---|---|---|---|
| ``regional.read`` | all | all | own + shared | own + shared | shared | no |
| ``submissions.read`` | all | all | own | own | no | own |
| ``rejections.read`` | all | all | own | no | no | own |
| ``scorecards.read`` | all | all | own + median | own + median | median | no |
| ``log.read`` | yes | yes | yes | yes | yes | yes |
| ``access_log.read`` | yes | no | no | no | no | no |
| ``alerts.read`` | all | all | own | own | verified | own |
| ``alerts.manage`` | yes | yes | no | no | no | no |
| ``alerts.inbox`` | no | no | own | own | no | own |
| ``alerts.ack`` | no | no | own | own | no | own |

(data manager and epidemiologist: ``country_data_manager`` and
``country_epidemiologist``.)

"Shared" are the countries whose agreement with the hub allows onward sharing
(``recipient_terms.onward_sharing``): the hub received everything, but passes a
country's data to partners only when that country agreed to it. Every decision, allowed
or refused, is written to the access log with its reason.

For alerts, "own" means alerts concerning the principal's country (any of the alert's
countries: both sides of a border), and observers see only verified alerts
(``alert_decision``). ``alerts.manage`` is changing status, owner and comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from epibridge.model.agreement import Agreement

Role: TypeAlias = Literal[
    "hub_admin",
    "hub_analyst",
    "country_data_manager",
    "country_epidemiologist",
    "observer",
    "node",
]
ROLES: tuple[Role, ...] = get_args(Role)
#: Roles a person can be given (``node`` is for machines with keys).
USER_ROLES: tuple[Role, ...] = tuple(r for r in ROLES if r != "node")
COUNTRY_ROLES: frozenset[Role] = frozenset(
    {"country_data_manager", "country_epidemiologist", "node"}
)
Action: TypeAlias = Literal[
    "regional.read",
    "submissions.read",
    "rejections.read",
    "scorecards.read",
    "log.read",
    "access_log.read",
    "alerts.read",
    "alerts.manage",
    "alerts.inbox",
    "alerts.ack",
]
ACTIONS: tuple[Action, ...] = get_args(Action)

_HUB = frozenset({"hub_admin", "hub_analyst"})
# For each action: the roles allowed at all, and whether a country role is limited to
# its own country.
_POLICY: dict[Action, frozenset[str]] = {
    "regional.read": frozenset(
        {"hub_admin", "hub_analyst", "country_data_manager", "country_epidemiologist", "observer"}
    ),
    "submissions.read": frozenset(
        {"hub_admin", "hub_analyst", "country_data_manager", "country_epidemiologist", "node"}
    ),
    "rejections.read": frozenset({"hub_admin", "hub_analyst", "country_data_manager", "node"}),
    "scorecards.read": frozenset(
        {"hub_admin", "hub_analyst", "country_data_manager", "country_epidemiologist", "observer"}
    ),
    "log.read": frozenset(ROLES),
    "access_log.read": frozenset({"hub_admin"}),
    "alerts.read": frozenset(ROLES),
    "alerts.manage": frozenset({"hub_admin", "hub_analyst"}),
    "alerts.inbox": frozenset(COUNTRY_ROLES),
    "alerts.ack": frozenset(COUNTRY_ROLES),
}


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    country: str | None  # None for hub roles and observers

    def __post_init__(self) -> None:
        if self.role in COUNTRY_ROLES and not self.country:
            raise ValueError(f"role {self.role} acts for a country; none given")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # machine code: "allowed", "role_not_allowed", "not_your_country"
    message: str


def decide(principal: Principal, action: Action, country: str | None = None) -> Decision:
    """May ``principal`` do ``action`` (on data of ``country``, when the data has one)?"""
    if principal.role not in _POLICY[action]:
        return Decision(
            False,
            "role_not_allowed",
            f"the role {principal.role} may not {action.replace('.', ' ')}",
        )
    if (
        country is not None
        and principal.role in COUNTRY_ROLES
        and action in ("submissions.read", "rejections.read")
        and country != principal.country
    ):
        return Decision(
            False,
            "not_your_country",
            f"{principal.name} acts for {principal.country}; this is {country}'s",
        )
    return Decision(True, "allowed", "allowed")


def alert_decision(
    principal: Principal, action: Action, countries: Iterable[str], status: str
) -> Decision:
    """``decide`` for one alert: a country role only for alerts concerning its country, an
    observer only for verified alerts."""
    decision = decide(principal, action)
    if not decision.allowed:
        return decision
    concerned = sorted(countries)
    if principal.role in COUNTRY_ROLES and principal.country not in concerned:
        return Decision(
            False,
            "not_your_country",
            f"{principal.name} acts for {principal.country}; this alert concerns "
            f"{', '.join(concerned)}",
        )
    if principal.role == "observer" and status != "verified":
        return Decision(
            False, "not_verified", f"observers see verified alerts only; this one is {status}"
        )
    return Decision(True, "allowed", "allowed")


def shared_countries(agreements: Iterable[Agreement]) -> frozenset[str]:
    """Countries whose agreement with the hub lets it pass their data to partners."""
    return frozenset(a.sender for a in agreements if a.onward_sharing)


def visible_countries(
    principal: Principal, agreements: Mapping[str, Agreement]
) -> frozenset[str] | None:
    """Whose regional data ``principal`` sees: None means every country."""
    if principal.role in _HUB:
        return None
    shared = shared_countries(agreements.values())
    if principal.country:
        return shared | {principal.country}
    return shared


def own_country_only(principal: Principal) -> str | None:
    """The country a principal's submission and rejection reads are limited to."""
    return None if principal.role in _HUB else principal.country
