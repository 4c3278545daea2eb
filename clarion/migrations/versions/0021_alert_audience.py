"""alert audience: a segment send's readers, written once when its dispatch begins

Dispatch pages over these ids as over a list (clarion.delivery.members) instead of evaluating
every condition again on each page; the rows go when the ledger is written or the send is
cancelled. The alert's frozen_meta["listed_for"] says they were written (in the same
transaction): no new column on alerts.

Revision ID: 0021_alert_audience
Revises: 0019_series
Create Date: 2026-12-04 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_alert_audience"
down_revision: str | None = "0019_series"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_audience",
        sa.Column("alert_id", BIG_ID, nullable=False),
        sa.Column("subscriber_id", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_audience_alert_id_alerts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"],
            name="fk_alert_audience_subscriber_id_subscribers", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", "subscriber_id", name="pk_alert_audience"),
    )  # fmt: skip
    # Erasing a reader deletes their rows: by subscriber, not a scan of every send's.
    op.create_index("ix_alert_audience_subscriber_id", "alert_audience", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_audience_subscriber_id", table_name="alert_audience")
    op.drop_table("alert_audience")
