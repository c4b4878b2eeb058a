"""Bring a hub database to the newest schema, with Alembic configured in code.

There is no ``alembic.ini``: the script location is this package's ``migrations/`` folder,
and the migrations run on a connection we open, inside one transaction we commit. That
transaction is what makes two hub processes starting at once safe: on SQLite it is a
``BEGIN IMMEDIATE`` (the second waits, then finds the schema current); on PostgreSQL we
first take a transaction-scoped advisory lock, which the second waits on.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from epibridge.hub.store import HubStoreError, hub_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Any fixed number: the key of the PostgreSQL advisory lock that serializes migrations.
_MIGRATION_LOCK = 0x6570_6962_0001


def upgrade(url: str) -> None:
    """Run every migration the database at ``url`` has not had yet (a no-op when current)."""
    engine = hub_engine(url)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine) -> None:
    """``upgrade`` on an engine made by ``hub_engine`` (``HubStore.open`` reuses its own)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            command.upgrade(_config(connection), "head")
        except CommandError as exc:
            raise HubStoreError(
                f"{engine.url.render_as_string(hide_password=True)}: cannot bring the hub "
                f"database up to date ({exc})\n"
                "  what to do: if the database was used by a newer epibridge, upgrade epibridge "
                "on this hub; do not edit the alembic_version table by hand"
            ) from exc


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _config(connection: Connection) -> Config:
    config = Config()
    # configparser interpolates "%": escape it in case the install path holds one.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config
