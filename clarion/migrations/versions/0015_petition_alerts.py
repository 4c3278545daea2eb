"""petition alerts: find a petition's signers by subscriber id, to leave them out of its alerts

Revision ID: 0015_petition_alerts
Revises: 0014_webhooks
Create Date: 2026-12-03 13:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_petition_alerts"
down_revision: str | None = "0014_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_signatures_subscriber", "signatures", ["petition_id", "subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_signatures_subscriber", table_name="signatures")
