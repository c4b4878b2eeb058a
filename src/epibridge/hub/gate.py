"""The one way a route authorizes a read: decide with ``access.decide``, write the
decision to the access log, refuse with 403 and the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from epibridge.hub.access import Action, Principal, decide
from epibridge.hub.intake import HubContext
from epibridge.hub.users import log_access


class Gate:
    """Decides, logs the decision, and refuses with 403: the one way a route authorizes."""

    def __init__(
        self,
        current: Callable[[], HubContext],
        clock: Callable[[], datetime],
        api_error: Callable[[int, str, str], Exception],
    ) -> None:
        self.current, self.clock, self.api_error = current, clock, api_error

    def __call__(
        self, who: Principal, action: Action, resource: str, country: str | None = None
    ) -> None:
        decision = decide(who, action, country)
        engine = self.current().store.engine
        log_access(engine, who, action, resource, decision.allowed, decision.reason, self.clock())
        if not decision.allowed:
            raise self.api_error(403, decision.reason, decision.message)
