"""The hub's intake storage: every sealed submission the hub accepted, kept idempotently.

``store.HubStore`` holds the accepted submissions and an append-only log of refused
attempts, in SQLite (the default, one file) or PostgreSQL (a real hub), through SQLAlchemy
Core. The schema is created and upgraded by the Alembic migrations in ``migrations/``,
run from code by ``migrate.upgrade`` (no ``alembic.ini``). Idempotency lives in the
database: the submission id is the primary key, so two intakes racing on the same
submission end with one row however they interleave
(docs/decisions/0009-hub-store.md).
"""
