"""The policy receipt of each accepted submission, kept for the quality scorecards.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission_receipts",
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("submission_id", name="pk_submission_receipts"),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.submission_id"],
            name="fk_submission_receipts_submission",
        ),
    )


def downgrade() -> None:
    op.drop_table("submission_receipts")
