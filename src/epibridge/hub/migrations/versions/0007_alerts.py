"""Alerts raised from detection signals, their events and their deliveries.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("disease", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("countries", sa.Text(), nullable=False),
        sa.Column("areas", sa.Text(), nullable=False),
        sa.Column("first_week", sa.Date(), nullable=False),
        sa.Column("last_week", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cross_border", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
        sa.CheckConstraint("kind IN ('temporal', 'cluster')", name="ck_alerts_kind"),
        sa.CheckConstraint(
            "status IN ('new', 'under_review', 'verified', 'discarded', 'closed')",
            name="ck_alerts_status",
        ),
        sa.CheckConstraint("first_week <= last_week", name="ck_alerts_weeks"),
    )
    op.create_index("ix_alerts_disease_status", "alerts", ["disease", "status"])
    op.create_table(
        "alert_events",
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("event_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"], name="fk_alert_events_alert"),
        sa.PrimaryKeyConstraint("alert_id", "event_no", name="pk_alert_events"),
        sa.CheckConstraint("event_no >= 1", name="ck_alert_events_no"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.alert_id"], name="fk_alert_deliveries_alert"
        ),
        sa.PrimaryKeyConstraint("alert_id", "country", "channel", name="pk_alert_deliveries"),
        sa.CheckConstraint(
            "channel IN ('node', 'webhook', 'email')", name="ck_alert_deliveries_channel"
        ),
    )
    op.create_index("ix_alert_deliveries_country", "alert_deliveries", ["country"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_country", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_events")
    op.drop_index("ix_alerts_disease_status", table_name="alerts")
    op.drop_table("alerts")
