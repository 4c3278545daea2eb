"""series: automations with a trigger, a goal and steps, and the readers in each

Revision ID: 0019_series
Revises: 0017_segments
Create Date: 2026-12-03 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db

revision: str = "0019_series"
down_revision: str | None = "0017_segments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = clarion.db.UTCDateTime(timezone=True)


def _fk(column: str, table: str, target: str, ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", name=f"fk_{table}_{column}_{target}", ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("list_id", BIG_ID, _fk("list_id", "series", "lists", "CASCADE"), nullable=False),
        sa.Column("trigger", sa.String(length=24), nullable=False),
        sa.Column(
            "petition_id",
            BIG_ID,
            _fk("petition_id", "series", "petitions", "SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "alert_id", BIG_ID, _fk("alert_id", "series", "alerts", "SET NULL"), nullable=True
        ),
        sa.Column("goal", JSON, nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("ticks", sa.BigInteger(), nullable=False),
        sa.Column("seen_click_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_by_id",
            BIG_ID,
            _fk("created_by_id", "series", "editors", "SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_series"),
        sa.UniqueConstraint("name", name="uq_series_name"),
    )
    op.create_table(
        "series_steps",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "series_id",
            BIG_ID,
            _fk("series_id", "series_steps", "series", "CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "alert_id",
            BIG_ID,
            _fk("alert_id", "series_steps", "alerts", "RESTRICT"),
            nullable=False,
        ),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("conditions", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_series_steps"),
        sa.UniqueConstraint("series_id", "position", name="uq_series_steps_series_id_position"),
    )
    op.create_index("ix_series_steps_alert_id", "series_steps", ["alert_id"])
    op.create_table(
        "series_entries",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "series_id",
            BIG_ID,
            _fk("series_id", "series_entries", "series", "CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "subscriber_id",
            BIG_ID,
            _fk("subscriber_id", "series_entries", "subscribers", "CASCADE"),
            nullable=False,
        ),
        sa.Column("trigger_key", sa.String(length=64), nullable=False),
        sa.Column("entered_at", WHEN, nullable=False),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("step_since", WHEN, nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("tick", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_series_entries"),
        sa.UniqueConstraint(
            "series_id",
            "subscriber_id",
            "trigger_key",
            name="uq_series_entries_series_id_subscriber_id_trigger_key",
        ),
    )
    op.create_index(
        "ix_series_entries_due", "series_entries", ["series_id", "state", "next_step", "step_since"]
    )
    op.create_index("ix_series_entries_tick", "series_entries", ["series_id", "tick"])
    op.create_index("ix_series_entries_subscriber", "series_entries", ["subscriber_id"])


def downgrade() -> None:
    op.drop_table("series_entries")
    op.drop_index("ix_series_steps_alert_id", table_name="series_steps")
    op.drop_table("series_steps")
    op.drop_table("series")
