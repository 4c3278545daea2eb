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
        sa.PrimaryKeyConstraint("alert_id", "subscriber_id", name="pk_alert_audience"),
    )  # fmt: skip
    # No foreign keys, no index by reader: checked for each row they cost as much as choosing
    # the readers (the key to alerts alone: 0.9 s of a 3.2 s listing of 200,000 readers,
    # bench/README.md). Erasing a reader deletes their rows here (SQLite may give a deleted
    # highest id to the next new reader); only drafts are deleted, and they have no rows here.


def downgrade() -> None:
    op.drop_table("alert_audience")
