"""editor language: the language the admin speaks to each editor

Revision ID: 0009_editor_language
Revises: 0008_alert_versions
Create Date: 2026-12-03 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_editor_language'
down_revision: str | None = '0008_alert_versions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('editors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('editors', schema=None) as batch_op:
        batch_op.drop_column('language')
