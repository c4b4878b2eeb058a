"""The regional reporting and denominators tables: reports expected/received and
population figures of every accepted submission.

Revision ID: 0009
Revises: 0008

Like the counts (0002), rows are only ever inserted with the submission they came from;
the as-of picture is a query (``hub/regional_context.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _row_id() -> sa.Column[int]:
    return sa.Column(
        "row_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _lineage(name: str) -> list[sa.Column[object]]:
    return [
        sa.Column(
            "submission_id",
            sa.Text(),
            sa.ForeignKey("submissions.submission_id", name=f"fk_{name}_submission"),
            nullable=False,
        ),
        sa.Column("source_row", sa.Integer(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("area", sa.Text(), nullable=False),
        sa.Column("area_level", sa.SmallInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "regional_reporting",
        _row_id(),
        *_lineage("regional_reporting"),
        sa.Column("disease", sa.Text(), nullable=True),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("period_type", sa.Text(), nullable=False),
        sa.Column("calendar", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("reports_expected", sa.BigInteger(), nullable=False),
        sa.Column("reports_received", sa.BigInteger(), nullable=False),
        sa.Column("reports_on_time", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("row_id", name="pk_regional_reporting"),
        sa.CheckConstraint(
            "reports_expected >= 0 AND reports_received >= 0", name="ck_regional_reporting_counts"
        ),
    )
    op.create_index("ix_regional_reporting_submission", "regional_reporting", ["submission_id"])
    op.create_index(
        "ix_regional_reporting_series", "regional_reporting", ["country", "period_start"]
    )
    op.create_table(
        "regional_denominators",
        _row_id(),
        *_lineage("regional_denominators"),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("age_band", sa.Text(), nullable=True),
        sa.Column("sex", sa.Text(), nullable=True),
        sa.Column("population", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name="pk_regional_denominators"),
        sa.CheckConstraint("population >= 0", name="ck_regional_denominators_population"),
    )
    op.create_index(
        "ix_regional_denominators_submission", "regional_denominators", ["submission_id"]
    )
    op.create_index("ix_regional_denominators_area", "regional_denominators", ["country", "year"])


def downgrade() -> None:
    op.drop_table("regional_denominators")
    op.drop_table("regional_reporting")
