"""Alembic environment for the hub database, run only from ``epibridge.hub.migrate``.

The caller hands over an open connection already inside a transaction (see migrate.py),
so this file neither builds an engine nor reads an ini file, and configures no logging:
the hub's own process decides where logs go.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "the hub migrations run from code only: call epibridge.hub.migrate.upgrade(url)"
    )

context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
