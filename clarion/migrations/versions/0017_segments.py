"""segments: saved named condition trees, and signatures found by reader or address alone

Revision ID: 0017_segments
Revises: 0015_petition_alerts
Create Date: 2026-12-03 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db

revision: str = "0017_segments"
down_revision: str | None = "0015_petition_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = clarion.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column(
            "created_by_id",
            BIG_ID,
            sa.ForeignKey(
                "editors.id", name="fk_segments_created_by_id_editors", ondelete="SET NULL"
            ),
            nullable=True,
        ),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
        sa.UniqueConstraint("name", name="uq_segments_name"),
    )
    op.create_index("ix_signatures_reader", "signatures", ["subscriber_id"])
    op.create_index("ix_signatures_email", "signatures", ["email"])


def downgrade() -> None:
    op.drop_index("ix_signatures_email", table_name="signatures")
    op.drop_index("ix_signatures_reader", table_name="signatures")
    op.drop_table("segments")
