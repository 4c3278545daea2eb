"""account safety: TOTP secrets encrypted at rest, the last accepted TOTP time step

Revision ID: 0005_account_safety
Revises: 0004_delivery_faults
Create Date: 2026-12-03 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_account_safety"
down_revision: str | None = "0004_delivery_faults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRET_COLUMNS = ("totp_secret", "totp_pending_secret")


def upgrade() -> None:
    with op.batch_alter_table("editors") as batch_op:
        for column in SECRET_COLUMNS:
            batch_op.alter_column(
                column, existing_type=sa.String(length=64), type_=sa.String(length=255)
            )
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    _seal_plaintext_secrets()


def _seal_plaintext_secrets() -> None:
    # Secrets stored before this revision are base32 text; from now on they are Fernet tokens
    # under a key derived from CLARION_SECRET_KEY, so a copy of the database alone is not enough.
    from clarion import editors

    bind = op.get_bind()
    table = sa.table("editors", sa.column("id"), *(sa.column(c) for c in SECRET_COLUMNS))
    rows = bind.execute(sa.select(table)).all()
    for row in rows:
        values = {
            column: editors.seal_secret(value)
            for column, value in zip(SECRET_COLUMNS, row[1:], strict=True)
            if value and not editors.is_sealed(value)
        }
        if values:
            bind.execute(table.update().where(table.c.id == row[0]).values(**values))


def downgrade() -> None:
    from clarion import editors

    bind = op.get_bind()
    table = sa.table("editors", sa.column("id"), *(sa.column(c) for c in SECRET_COLUMNS))
    for row in bind.execute(sa.select(table)).all():
        values = {
            column: editors.open_secret(value)
            for column, value in zip(SECRET_COLUMNS, row[1:], strict=True)
            if value and editors.is_sealed(value)
        }
        if values:
            bind.execute(table.update().where(table.c.id == row[0]).values(**values))
    with op.batch_alter_table("editors") as batch_op:
        batch_op.drop_column("totp_last_step")
        for column in SECRET_COLUMNS:
            batch_op.alter_column(
                column, existing_type=sa.String(length=255), type_=sa.String(length=64)
            )
