"""mail due: a confirmation mail owed is marked on its consent record or signature

A confirmation mail was queued once, after the commit that made it owed; a task lost with
Redis, a web process gone between the commit and the publish, or retries run out in a long
mail server outage left the reader without it. `mail_due_at` marks the mail owed until it is
sent (or given up), and the mail sweep queues it again once that time has passed
(clarion.audience.notices, clarion.actions.petition_notices). Rows already there owe
nothing: their mails went (or were lost) before this.

Revision ID: 0023_mail_due
Revises: 0022_drop_alert_audience
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db

revision: str = "0023_mail_due"
down_revision: str | None = "0022_drop_alert_audience"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = clarion.db.UTCDateTime(timezone=True)
OWED = sa.text("mail_due_at IS NOT NULL")
TABLES = (
    ("consent_records", "ix_consent_records_mail_due"),
    ("signatures", "ix_signatures_mail_due"),
)


def upgrade() -> None:
    for table, index in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("mail_due_at", WHEN, nullable=True))
        op.create_index(index, table, ["mail_due_at"], postgresql_where=OWED, sqlite_where=OWED)


def downgrade() -> None:
    for table, index in TABLES:
        op.drop_index(index, table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("mail_due_at")
