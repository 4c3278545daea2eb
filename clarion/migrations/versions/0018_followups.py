"""follow-ups and re-permission: what a follow-up follows, a stay deadline, and the stays

Revision ID: 0018_followups
Revises: 0017_segments
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db

revision: str = "0018_followups"
down_revision: str | None = "0017_segments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = clarion.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("alerts", sa.Column("stay_days", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("stay_closed_at", WHEN, nullable=True))
    op.create_table(
        "follow_ups",
        sa.Column(
            "alert_id",
            BIG_ID,
            sa.ForeignKey("alerts.id", name="fk_follow_ups_alert_id_alerts", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "origin_id",
            BIG_ID,
            sa.ForeignKey("alerts.id", name="fk_follow_ups_origin_id_alerts", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_follow_ups"),
    )
    op.create_index("ix_follow_ups_origin_id", "follow_ups", ["origin_id"])
    op.create_table(
        "stays",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "alert_id",
            BIG_ID,
            sa.ForeignKey("alerts.id", name="fk_stays_alert_id_alerts", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "subscriber_id",
            BIG_ID,
            sa.ForeignKey(
                "subscribers.id", name="fk_stays_subscriber_id_subscribers", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stays"),
        sa.UniqueConstraint("alert_id", "subscriber_id", name="uq_stays_alert_id_subscriber_id"),
    )
    op.create_index("ix_stays_subscriber_id", "stays", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_stays_subscriber_id", table_name="stays")
    op.drop_table("stays")
    op.drop_index("ix_follow_ups_origin_id", table_name="follow_ups")
    op.drop_table("follow_ups")
    # Plain columns: SQLite drops them in place (3.35+), without copying the table.
    op.drop_column("alerts", "stay_closed_at")
    op.drop_column("alerts", "stay_days")
