"""drop alert audience: a segment send's readers are chosen beside the writer, not listed first

Dispatch now chooses a segment send's readers range by range in a thread a few pages ahead of
the ledger writer (clarion.delivery.members), so nothing is stored between pages: a dispatch
that starts again carries on from the ledger. An alert's frozen_meta may still carry the old
"listed_for" mark; nothing reads it.

Revision ID: 0022_drop_alert_audience
Revises: 0021_alert_audience
Create Date: 2026-12-04 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_drop_alert_audience"
down_revision: str | None = "0021_alert_audience"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table("alert_audience")


def downgrade() -> None:
    op.create_table(
        "alert_audience",
        sa.Column("alert_id", BIG_ID, nullable=False),
        sa.Column("subscriber_id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "subscriber_id", name="pk_alert_audience"),
    )  # fmt: skip
