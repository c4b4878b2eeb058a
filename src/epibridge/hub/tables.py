"""The hub database's tables, as SQLAlchemy Core sees them.

The schema belongs to the Alembic migrations in ``migrations/``: these definitions mirror
them for building queries, and a test checks the two agree column by column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator


def utc(at: datetime, what: str) -> datetime:
    """``at`` in UTC; a naive datetime is a programming error (times are passed in aware)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {at!r}")
    return at.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC, read back aware in UTC on every backend.

    PostgreSQL keeps a ``timestamptz`` and returns it in the session's time zone, which we
    convert; SQLite has no time zone type, so the UTC wall time is stored as text (which
    sorts chronologically) and UTC is attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        at = utc(value, "a stored time")
        return at.replace(tzinfo=None) if dialect.name == "sqlite" else at

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

submissions_table = Table(
    "submissions",
    metadata,
    Column("submission_id", Text, nullable=False),
    Column("origin_country", Text, nullable=False),
    Column("agreement_id", Text, nullable=False),
    Column("agreement_sha256", Text, nullable=False),
    Column("manifest_sha256", Text, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("signer_kid", Text, nullable=False),
    Column("revision_of", Text, nullable=True),
    Column("period_from", Date, nullable=True),
    Column("period_to", Date, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("stored_path", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    PrimaryKeyConstraint("submission_id", name="pk_submissions"),
    CheckConstraint("size_bytes >= 0", name="ck_submissions_size_bytes"),
    CheckConstraint(
        "period_from IS NULL OR period_to IS NULL OR period_from <= period_to",
        name="ck_submissions_period",
    ),
    Index("ix_submissions_origin_country", "origin_country"),
    Index("ix_submissions_revision_of", "revision_of"),
)

rejections_table = Table(
    "rejections",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True),
    Column("submission_id", Text, nullable=True),
    Column("origin_country", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("id", name="pk_rejections"),
)


#: An auto-numbered key: BIGINT on PostgreSQL; SQLite only auto-numbers INTEGER.
def _row_id() -> Column[int]:
    return Column("row_id", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True)


# Released counts, one row per cell of an accepted submission (never updated).
regional_counts_table = Table(
    "regional_counts",
    metadata,
    _row_id(),
    Column(
        "submission_id",
        Text,
        ForeignKey("submissions.submission_id", name="fk_regional_counts_submission"),
        nullable=False,
    ),
    Column("source_row", Integer, nullable=False),
    Column("country", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("area_level", SmallInteger, nullable=False),
    Column("disease", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("period_type", Text, nullable=False),
    Column("calendar", Text, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("sex", Text, nullable=True),
    Column("age_band", Text, nullable=True),
    Column("cases", BigInteger, nullable=True),
    Column("cases_suppressed", Boolean, nullable=False),
    Column("deaths", BigInteger, nullable=True),
    Column("deaths_suppressed", Boolean, nullable=True),
    PrimaryKeyConstraint("row_id", name="pk_regional_counts"),
    Index("ix_regional_counts_submission", "submission_id"),
    Index("ix_regional_counts_series", "country", "disease", "period_start"),
)

# Released line-list rows of an accepted submission: the structure every release keeps,
# and the other released fields (which vary by agreement) as a JSON object.
regional_cases_table = Table(
    "regional_cases",
    metadata,
    _row_id(),
    Column(
        "submission_id",
        Text,
        ForeignKey("submissions.submission_id", name="fk_regional_cases_submission"),
        nullable=False,
    ),
    Column("source_row", Integer, nullable=False),
    Column("country", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("disease", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("case_count", Integer, nullable=False),
    Column("fields", Text, nullable=False),
    PrimaryKeyConstraint("row_id", name="pk_regional_cases"),
    Index("ix_regional_cases_submission", "submission_id"),
    Index("ix_regional_cases_series", "country", "disease"),
)


def _lineage(name: str) -> list[Column[Any]]:
    """The submission a regional row came from, its position there, and its place."""
    return [
        Column(
            "submission_id",
            Text,
            ForeignKey("submissions.submission_id", name=f"fk_{name}_submission"),
            nullable=False,
        ),
        Column("source_row", Integer, nullable=False),
        Column("country", Text, nullable=False),
        Column("area", Text, nullable=False),
        Column("area_level", SmallInteger, nullable=False),
    ]


# Released reports expected / received / on time of an accepted submission (never updated);
# a null disease covers every notifiable disease.
regional_reporting_table = Table(
    "regional_reporting",
    metadata,
    _row_id(),
    *_lineage("regional_reporting"),
    Column("disease", Text, nullable=True),
    Column("period", Text, nullable=False),
    Column("period_type", Text, nullable=False),
    Column("calendar", Text, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("reports_expected", BigInteger, nullable=False),
    Column("reports_received", BigInteger, nullable=False),
    Column("reports_on_time", BigInteger, nullable=True),
    PrimaryKeyConstraint("row_id", name="pk_regional_reporting"),
    CheckConstraint(
        "reports_expected >= 0 AND reports_received >= 0", name="ck_regional_reporting_counts"
    ),
    Index("ix_regional_reporting_submission", "submission_id"),
    Index("ix_regional_reporting_series", "country", "period_start"),
)

# Released population figures of an accepted submission (never updated).
regional_denominators_table = Table(
    "regional_denominators",
    metadata,
    _row_id(),
    *_lineage("regional_denominators"),
    Column("year", SmallInteger, nullable=False),
    Column("age_band", Text, nullable=True),
    Column("sex", Text, nullable=True),
    Column("population", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    PrimaryKeyConstraint("row_id", name="pk_regional_denominators"),
    CheckConstraint("population >= 0", name="ck_regional_denominators_population"),
    Index("ix_regional_denominators_submission", "submission_id"),
    Index("ix_regional_denominators_area", "country", "year"),
)


#: The regional tables, each row from one accepted submission.
REGIONAL_TABLES = (
    regional_counts_table,
    regional_cases_table,
    regional_reporting_table,
    regional_denominators_table,
)

# The transparency log (``hub/log.py``): one leaf per accepted submission, registered
# agreement and key change, numbered from 1 without gaps; never updated or deleted.
log_entries_table = Table(
    "log_entries",
    metadata,
    Column("seq", BigInteger, autoincrement=False, nullable=False),
    Column("kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("entry", Text, nullable=False),
    Column("leaf_hash", Text, nullable=False),
    Column("logged_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("seq", name="pk_log_entries"),
    Index("ux_log_entries_subject", "kind", "subject", unique=True),
    CheckConstraint("seq >= 1", name="ck_log_entries_seq"),
)

# Tree heads the hub signed, and the countersignatures nodes gave them.
tree_heads_table = Table(
    "tree_heads",
    metadata,
    Column("tree_size", BigInteger, autoincrement=False, nullable=False),
    Column("root_hash", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("token", Text, nullable=False),
    PrimaryKeyConstraint("tree_size", name="pk_tree_heads"),
)

countersignatures_table = Table(
    "countersignatures",
    metadata,
    Column("tree_size", BigInteger, autoincrement=False, nullable=False),
    Column("country", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tree_size", "country", name="pk_countersignatures"),
)

# People who use the hub's API (nodes authenticate with their keys instead): a role, the
# country it acts for, and the SHA-256 of a random bearer token shown once.
hub_users_table = Table(
    "hub_users",
    metadata,
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("country", Text, nullable=True),
    Column("token_sha256", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("name", name="pk_hub_users"),
    Index("ux_hub_users_token", "token_sha256", unique=True),
)

# Every authorization decision on a read, allowed or not (append-only).
access_log_table = Table(
    "access_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("principal", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    PrimaryKeyConstraint("id", name="pk_access_log"),
)

# The policy receipt each accepted submission carried (what was withheld and why, what
# ingest quarantined): the quality scorecards read it.
submission_receipts_table = Table(
    "submission_receipts",
    metadata,
    Column(
        "submission_id",
        Text,
        ForeignKey("submissions.submission_id", name="fk_submission_receipts_submission"),
        nullable=False,
    ),
    Column("receipt", Text, nullable=False),
    PrimaryKeyConstraint("submission_id", name="pk_submission_receipts"),
)

# Client-assertion ids already used (``hub/auth.py``): kept in the database so that a
# replay is refused by every hub process and after a restart.
assertion_ids_table = Table(
    "assertion_ids",
    metadata,
    Column("issuer", Text, nullable=False),
    Column("jti", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("issuer", "jti", name="pk_assertion_ids"),
    Index("ix_assertion_ids_expires_at", "expires_at"),
)

# Alerts raised from detection signals (``hub/alerts.py``): the current state of each; every
# change is also an ``alert_events`` row and a transparency-log leaf of kind "alert".
# ``countries``, ``areas`` and ``detail`` are JSON (sorted lists; an object).
alerts_table = Table(
    "alerts",
    metadata,
    Column("alert_id", Text, nullable=False),
    Column("disease", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("owner", Text, nullable=True),
    Column("title", Text, nullable=False),
    Column("countries", Text, nullable=False),
    Column("areas", Text, nullable=False),
    Column("first_week", Date, nullable=False),
    Column("last_week", Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("cross_border", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    PrimaryKeyConstraint("alert_id", name="pk_alerts"),
    CheckConstraint("kind IN ('temporal', 'cluster')", name="ck_alerts_kind"),
    CheckConstraint(
        "status IN ('new', 'under_review', 'verified', 'discarded', 'closed')",
        name="ck_alerts_status",
    ),
    CheckConstraint("first_week <= last_week", name="ck_alerts_weeks"),
    Index("ix_alerts_disease_status", "disease", "status"),
)

# Every change of an alert, numbered per alert from 1 (append-only).
alert_events_table = Table(
    "alert_events",
    metadata,
    Column(
        "alert_id",
        Text,
        ForeignKey("alerts.alert_id", name="fk_alert_events_alert"),
        nullable=False,
    ),
    Column("event_no", Integer, autoincrement=False, nullable=False),
    Column("kind", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("text", Text, nullable=False),
    PrimaryKeyConstraint("alert_id", "event_no", name="pk_alert_events"),
    CheckConstraint("event_no >= 1", name="ck_alert_events_no"),
)

# One row per alert, country concerned and channel (node, webhook, email).
alert_deliveries_table = Table(
    "alert_deliveries",
    metadata,
    Column(
        "alert_id",
        Text,
        ForeignKey("alerts.alert_id", name="fk_alert_deliveries_alert"),
        nullable=False,
    ),
    Column("country", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("acknowledged_by", Text, nullable=True),
    Column("escalated_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    PrimaryKeyConstraint("alert_id", "country", "channel", name="pk_alert_deliveries"),
    CheckConstraint("channel IN ('node', 'webhook', 'email')", name="ck_alert_deliveries_channel"),
    Index("ix_alert_deliveries_country", "country"),
)
