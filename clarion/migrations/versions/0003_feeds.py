"""feeds (first poll, last success and error), feed entries' alert hash and note; indexes for
an alert's children (hashtag-day announcement and reminder) and for an entry's alert

Revision ID: 0003_feeds
Revises: 0002_petitions
Create Date: 2026-11-27 07:59:18.790391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db

revision: str = '0003_feeds'
down_revision: str | None = '0002_petitions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_feed_entry', ['feed_entry_id'], unique=False)
        batch_op.create_index('ix_alerts_parent', ['parent_id', 'role'], unique=False)

    with op.batch_alter_table('feed_entries', schema=None) as batch_op:
        # Existing rows get empty values; new ones get them from the model defaults.
        batch_op.add_column(sa.Column('alert_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=False, server_default=sa.text("''")))

    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('primed_at', clarion.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_success_at', clarion.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error_at', clarion.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('last_error_at')
        batch_op.drop_column('last_success_at')
        batch_op.drop_column('primed_at')

    with op.batch_alter_table('feed_entries', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('alert_hash')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_parent')
        batch_op.drop_index('ix_alerts_feed_entry')
