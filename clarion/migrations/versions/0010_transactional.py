"""transactional: each transactional mail sent, for its VERP token and bounces

Revision ID: 0010_transactional
Revises: 0009_editor_language
Create Date: 2026-12-03 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clarion.db

revision: str = '0010_transactional'
down_revision: str | None = '0009_editor_language'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notice_mails',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('subscriber_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', clarion.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', clarion.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reply', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_notice_mails_subscriber_id_subscribers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_mails'))
    )
    with op.batch_alter_table('notice_mails', schema=None) as batch_op:
        batch_op.create_index('ix_notice_mails_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_mails_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_mails_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_mails_subscriber_id'), ['subscriber_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notice_mails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_mails_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_notice_mails_message_id'))
        batch_op.drop_index(batch_op.f('ix_notice_mails_email'))
        batch_op.drop_index('ix_notice_mails_created')
    op.drop_table('notice_mails')
