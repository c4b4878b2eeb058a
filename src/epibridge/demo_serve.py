"""The demo's last stage: people to log in as, what to look at first, and the dashboard.

The demo's hub gets one user per role (``hub users add``): an administrator, an analyst,
Cambodia's data manager and epidemiologist, Viet Nam's epidemiologist and an observer.
Their access tokens are written to ``WORKSPACE/dashboard-users.txt`` (readable by the
owner only: they are the demo's passwords and are not printed). Then the demo prints
where to look first and, unless ``--no-serve``, keeps the hub serving the dashboard until
Ctrl-C.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from epibridge.demo_exchange import PASSPHRASE_FILE, DemoHub, DemoHubError
from epibridge.files import write_private
from epibridge.hub.users import add_user

USERS = (
    ("admin", "hub_admin", None),
    ("analyst", "hub_analyst", None),
    ("khm.data", "country_data_manager", "KHM"),
    ("khm.epi", "country_epidemiologist", "KHM"),
    ("vnm.epi", "country_epidemiologist", "VNM"),
    ("observer", "observer", None),
)
USERS_FILE = "dashboard-users.txt"


def make_users(running: DemoHub, workspace: Path) -> Path:
    """Create the demo's users at the hub; their tokens go to a file only the owner reads."""
    now = datetime.now(UTC)
    lines = [
        "# epibridge demo: dashboard users (name, role, country, access token).",
        "# Log in at the dashboard with the name and the token. Made for this run only.",
    ]
    with running.hub.open_store() as store:
        for name, role, country in USERS:
            _, token = add_user(store.engine, name, role, country, now)
            lines.append(f"{name}\t{role}\t{country or '-'}\t{token}")
    path = workspace / USERS_FILE
    write_private(path, "\n".join(lines) + "\n")
    return path


def summary(running: DemoHub, workspace: Path, users: Path, console: Console) -> None:
    hub = workspace / "hub"
    console.print(
        "\n[bold]What to look at first[/]\n"
        f"  1. The dashboard, {running.url}/ : log in as [cyan]analyst[/] (tokens in {users}).\n"
        "     The map shows dengue per 100,000 by province, reported and corrected; the\n"
        "     alert inbox holds the cross-border alert (Svay Rieng, Cambodia + Tay Ninh,\n"
        "     Viet Nam), verified and acknowledged by both countries.\n"
        "  2. Log in as [cyan]khm.epi[/] and as [cyan]observer[/]: each sees what the agreements\n"
        "     allow, not more.\n"
        f"  3. The same from the command line: `epibridge hub alerts list --home {hub}`,\n"
        f"     `epibridge hub burden --disease DENGUE --home {hub}`,\n"
        f"     `epibridge hub detect --disease DENGUE --home {hub}`,\n"
        f"     `epibridge node alerts --no-fetch --home {workspace / 'nodes' / 'KHM'}`;\n"
        f"     commands that open keys (node alerts, audit verify) take the demo's passphrase:\n"
        f"     export EPIBRIDGE_KEY_PASSPHRASE=$(cat {workspace / PASSPHRASE_FILE}).\n"
        "  4. docs/scenario.md: the synthetic Mekong scenario and its planted outbreaks.",
        soft_wrap=True,
        highlight=False,
    )


def serve_until_stopped(running: DemoHub, console: Console) -> None:
    """Keep the hub (and its dashboard) running until Ctrl-C or the process ends."""
    console.print(
        f"\nServing the dashboard at [bold]{running.url}/[/] - press Ctrl-C to stop.",
        soft_wrap=True,
    )

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a SIGTERM stops the hub like Ctrl-C does

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        running.process.wait()
    except KeyboardInterrupt:
        console.print("stopping the hub")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if running.process.returncode not in (None, 0, -15):
        raise DemoHubError(
            f"the hub process stopped (exit {running.process.returncode}); its log: {running.log}"
        )
