"""Area names for people: the English name, with the local-script name beside it.

The registry holds each unit's English (romanised) name and its name in the country's
own script (``name_local``). Codes the registry does not know (a country's own codes
below admin-1, say) are shown as they came.
"""

from __future__ import annotations

import functools

from epibridge.registry.geography import Unit, units


@functools.cache
def _by_code() -> dict[str, Unit]:
    return {u.code: u for u in units()}


def registry_unit(code: str) -> Unit | None:
    return _by_code().get(code)


def name_of(code: str) -> tuple[str, str | None]:
    """The English name and the local-script name (None when the same or unknown)."""
    found = registry_unit(code)
    if found is None:
        return code, None
    local = found.name_local.strip()
    return found.name, (local if local and local != found.name else None)


def label(code: str) -> str:
    """``English (local)`` as one string (for SVG tooltips)."""
    name, local = name_of(code)
    return f"{name} ({local})" if local else name
