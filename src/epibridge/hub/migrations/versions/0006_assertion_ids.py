"""Client-assertion ids already used, shared by every hub process.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assertion_ids",
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name="pk_assertion_ids"),
    )
    op.create_index("ix_assertion_ids_expires_at", "assertion_ids", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_assertion_ids_expires_at", table_name="assertion_ids")
    op.drop_table("assertion_ids")
