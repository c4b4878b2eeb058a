"""The regional tables: released counts and line-list rows of every accepted submission.

Revision ID: 0002
Revises: 0001

Rows are only ever inserted, together with the submission they came from (one
transaction); what the hub knew at a moment is a query over submission times
(``hub/regional.py``), never an update.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _row_id() -> sa.Column[int]:
    return sa.Column(
        "row_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "regional_counts",
        _row_id(),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("area_level", sa.SmallInteger(), nullable=False),
        sa.Column("disease", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("period_type", sa.Text(), nullable=False),
        sa.Column("calendar", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("sex", sa.Text(), nullable=True),
        sa.Column("age_band", sa.Text(), nullable=True),
        sa.Column("cases", sa.BigInteger(), nullable=True),
        sa.Column("cases_suppressed", sa.Boolean(), nullable=False),
        sa.Column("deaths", sa.BigInteger(), nullable=True),
        sa.Column("deaths_suppressed", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("row_id", name="pk_regional_counts"),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.submission_id"],
            name="fk_regional_counts_submission",
        ),
    )
    op.create_index("ix_regional_counts_submission", "regional_counts", ["submission_id"])
    op.create_index(
        "ix_regional_counts_series", "regional_counts", ["country", "disease", "period_start"]
    )
    op.create_table(
        "regional_cases",
        _row_id(),
        sa.Column("submission_id", sa.Text(), nullable=False),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("disease", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("case_count", sa.Integer(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name="pk_regional_cases"),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.submission_id"],
            name="fk_regional_cases_submission",
        ),
    )
    op.create_index("ix_regional_cases_submission", "regional_cases", ["submission_id"])
    op.create_index("ix_regional_cases_series", "regional_cases", ["country", "disease"])


def downgrade() -> None:
    op.drop_table("regional_cases")
    op.drop_table("regional_counts")
