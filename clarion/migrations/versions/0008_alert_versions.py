"""alert versions: an alert's primary language, its versions in other languages, and their
frozen renderings

Revision ID: 0008_alert_versions
Revises: 0007_languages
Create Date: 2026-12-03 12:40:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_alert_versions'
down_revision: str | None = '0007_languages'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql')


def _primary(audience: object) -> str:
    """What an alert spoke before versions: its audience's one language, else the default."""
    from clarion import i18n

    if isinstance(audience, str):
        audience = json.loads(audience or "{}")
    chosen = list((audience or {}).get("languages") or []) if isinstance(audience, dict) else []
    return i18n.resolve(chosen[0] if len(chosen) == 1 else None)


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('language', sa.String(length=8), nullable=False, server_default='')
        )
        batch_op.add_column(
            sa.Column('translations', JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column('frozen_versions', JSON, nullable=False, server_default=sa.text("'{}'"))
        )
    bind = op.get_bind()
    alerts = sa.table('alerts', sa.column('id'), sa.column('audience', JSON),
                      sa.column('language'))  # fmt: skip
    for alert_id, audience in bind.execute(sa.select(alerts.c.id, alerts.c.audience)).all():
        bind.execute(
            alerts.update().where(alerts.c.id == alert_id).values(language=_primary(audience))
        )


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('frozen_versions')
        batch_op.drop_column('translations')
        batch_op.drop_column('language')
