"""reader privacy: erased readers keep only a keyed hash (suppressions, consent proof), clicks
aggregated into per-link counts

Revision ID: 0006_reader_privacy
Revises: 0005_account_safety
Create Date: 2026-12-03 10:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_reader_privacy'
down_revision: str | None = '0005_account_safety'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('click_counts',
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('link_index', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('unique_clicks', sa.Integer(), nullable=False),
    sa.Column('scanner_clicks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_click_counts_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', 'link_index', name=op.f('pk_click_counts'))
    )
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_hash', sa.String(length=32), nullable=True))
        batch_op.alter_column('subscriber_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True)

    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_hash', sa.String(length=32), nullable=True))
        batch_op.alter_column('email', existing_type=sa.String(length=320), nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_suppressions_email_hash'), ['email_hash'])


def downgrade() -> None:
    # Rows of erased readers have no address to restore: they go.
    op.execute("DELETE FROM suppressions WHERE email IS NULL")
    op.execute("DELETE FROM consent_records WHERE subscriber_id IS NULL")
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_suppressions_email_hash'), type_='unique')
        batch_op.alter_column('email', existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_column('email_hash')

    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.alter_column('subscriber_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False)
        batch_op.drop_column('email_hash')

    op.drop_table('click_counts')
