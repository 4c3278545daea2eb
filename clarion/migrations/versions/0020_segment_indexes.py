"""segment indexes: "received alert A" read from an index alone (alert, status, reader);
clicks by delivery, for the cascade when ledger rows are deleted

Revision ID: 0020_segment_indexes
Revises: 0018_followups
Create Date: 2026-12-03 16:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_segment_indexes"
down_revision: str | None = "0018_followups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_audience", "deliveries", ["alert_id", "status", "subscriber_id"]
    )
    op.create_index("ix_clicks_delivery", "clicks", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_clicks_delivery", table_name="clicks")
    op.drop_index("ix_deliveries_audience", table_name="deliveries")
