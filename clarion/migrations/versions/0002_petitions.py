"""petitions, click-through and stats: open event ids, indexes for per-alert stats

Revision ID: 0002_petitions
Revises: 0002_delivery
Create Date: 2026-11-27 06:01:32.537162
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_petitions'
down_revision: str | None = '0002_delivery'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_records_alert_id'), ['alert_id'], unique=False)

    # Opens are buffered in Redis like clicks; the stream entry id makes the flush idempotent.
    with op.batch_alter_table('opens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.String(length=40), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_opens_event_id'), ['event_id'])

    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signatures_alert_id'), ['alert_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signatures_alert_id'))

    with op.batch_alter_table('opens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_opens_event_id'), type_='unique')
        batch_op.drop_column('event_id')

    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_records_alert_id'))
