"""Submissions the hub accepted, and the log of attempts it refused.

Revision ID: 0001
Revises: (none)

Types are spelled out here rather than imported from ``store.py``: a migration must keep
creating the same schema after the code that reads it has moved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submissions",
        # The primary key is the idempotency guarantee: a second insert of the same id
        # fails in the database, whatever process or thread attempts it.
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("origin_country", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("agreement_sha256", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.Text(), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("signer_kid", sa.Text(), nullable=False),
        sa.Column("revision_of", sa.Text(), nullable=True),
        sa.Column("period_from", sa.Date(), nullable=True),
        sa.Column("period_to", sa.Date(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_path", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("submission_id", name="pk_submissions"),
        sa.CheckConstraint("size_bytes >= 0", name="ck_submissions_size_bytes"),
        sa.CheckConstraint(
            "period_from IS NULL OR period_to IS NULL OR period_from <= period_to",
            name="ck_submissions_period",
        ),
    )
    op.create_index("ix_submissions_origin_country", "submissions", ["origin_country"])
    op.create_table(
        "rejections",
        # BIGINT on PostgreSQL; SQLite only auto-numbers a column declared INTEGER.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("submission_id", sa.Text(), nullable=True),
        sa.Column("origin_country", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejections"),
    )


def downgrade() -> None:
    op.drop_table("rejections")
    op.drop_index("ix_submissions_origin_country", table_name="submissions")
    op.drop_table("submissions")
