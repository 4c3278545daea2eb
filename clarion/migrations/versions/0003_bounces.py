"""bounces: inbound de-duplication and attempts, soft bounces counted once a day, admin notices,
deliveries found by Message-ID

Revision ID: 0003_bounces
Revises: 0003_feeds
Create Date: 2026-11-27 08:06:53.000859
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db


revision: str = '0003_bounces'
down_revision: str | None = '0003_feeds'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('admin_notices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_at', clarion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', clarion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dismissed_at', clarion.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dismissed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_admin_notices_alert_id_alerts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dismissed_by_id'], ['editors.id'], name=op.f('fk_admin_notices_dismissed_by_id_editors'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_notices'))
    )
    with op.batch_alter_table('admin_notices', schema=None) as batch_op:
        batch_op.create_index('ix_admin_notices_open', ['dismissed_at', 'kind', 'alert_id'], unique=False)

    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counted_on', sa.Date(), nullable=True))
        batch_op.create_index('ux_bounces_counted_day', ['email', 'counted_on'], unique=True)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_message_id', ['message_id'], unique=False)

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('outcome', sa.String(length=300), nullable=False, server_default=''))
        batch_op.create_unique_constraint(batch_op.f('uq_inbound_messages_source_ref'), ['source_ref'])



def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_inbound_messages_source_ref'), type_='unique')
        batch_op.drop_column('outcome')
        batch_op.drop_column('attempts')
        batch_op.drop_column('source_ref')

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_message_id')

    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.drop_index('ux_bounces_counted_day')
        batch_op.drop_column('counted_on')

    with op.batch_alter_table('admin_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_notices_open')

    op.drop_table('admin_notices')
