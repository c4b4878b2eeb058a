"""Options several ``epibridge hub`` command modules share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HUB_HOME_ENV = "EPIBRIDGE_HUB_HOME"
DEFAULT_HUB_HOME = Path("epibridge-hub")

HubHomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help=f"The hub's folder (settings, keys, trust list, spool). Default: ${HUB_HOME_ENV} "
        "or ./epibridge-hub.",
    ),
]


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="What the hub knew at this time (ISO 8601; a date means its midnight UTC). "
        "Default: now.",
    ),
]
