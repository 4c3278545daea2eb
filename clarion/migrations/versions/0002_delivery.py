"""delivery engine: batches of ledger rows, frozen sender/audience, dispatch completion

Revision ID: 0002_delivery
Revises: 0002_editors
Create Date: 2026-11-27 06:02:28.773273
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db
from sqlalchemy.dialects import postgresql  # noqa: I001

revision: str = '0002_delivery'
down_revision: str | None = '0002_editors'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('delivery_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('first_id', sa.BigInteger(), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'enqueued', 'done', name='batchstate', native_enum=False, length=24), nullable=False),
    sa.Column('due_at', clarion.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('enqueued_at', clarion.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('epoch', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_delivery_batches_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_batches'))
    )
    with op.batch_alter_table('delivery_batches', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_batches_work', ['alert_id', 'state', 'due_at'], unique=False)

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        # Existing alerts get an empty object; new ones get it from the model default.
        batch_op.add_column(sa.Column('frozen_meta', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column('dispatched_at', clarion.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('frozen_meta')

    with op.batch_alter_table('delivery_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_batches_work')

    op.drop_table('delivery_batches')
