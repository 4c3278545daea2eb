"""series: automations with a trigger, a goal and steps, and the readers in each

Revision ID: 0019_series
Revises: 0020_segment_indexes
Create Date: 2026-12-03 15:40:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import clarion.db

revision: str = "0019_series"
down_revision: str | None = "0020_segment_indexes"
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
        sa.Column("welcome", sa.Boolean(), nullable=False),
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
    _welcomes_to_series()


# The tables as this revision knows them, for moving the welcome mails (not the models: they
# change after this revision).
LISTS = sa.table("lists", sa.column("id"), sa.column("name"), sa.column("welcome_alert_id"))
SERIES = sa.table(
    "series",
    *(sa.column(c) for c in ("id", "name", "list_id", "trigger", "status", "welcome", "ticks")),
    sa.column("seen_click_id"),
    sa.column("created_at", WHEN),
    sa.column("updated_at", WHEN),
)
STEPS = sa.table(
    "series_steps",
    *(sa.column(c) for c in ("series_id", "position", "alert_id", "delay_seconds")),
)


def _welcomes_to_series() -> None:
    """Each list's welcome mail becomes an active one-step series: joined the list, at once.

    The alert stays as it is (frozen, sending, role welcome); readers who had it keep their
    ledger row, which the ledger's uniqueness keeps them from getting again.
    """
    bind = op.get_bind()
    now = datetime.now(UTC)
    found = bind.execute(
        sa.select(LISTS.c.id, LISTS.c.name, LISTS.c.welcome_alert_id)
        .where(LISTS.c.welcome_alert_id.is_not(None))
        .order_by(LISTS.c.id)
    ).all()
    for list_id, name, alert_id in found:
        series_id = bind.execute(
            sa.insert(SERIES)
            .values(
                name=f"Welcome: {name} ({list_id})"[:200],
                list_id=list_id,
                trigger="joined",
                status="active",
                welcome=True,
                ticks=0,
                seen_click_id=0,
                created_at=now,
                updated_at=now,
            )
            .returning(SERIES.c.id)
        ).scalar_one()
        bind.execute(
            sa.insert(STEPS).values(
                series_id=series_id, position=1, alert_id=alert_id, delay_seconds=0
            )
        )
    bind.execute(sa.update(LISTS).values(welcome_alert_id=None))


def _series_to_welcomes() -> None:
    """Back: each list's welcome series gives the list its first step's alert again."""
    bind = op.get_bind()
    first = (
        sa.select(STEPS.c.alert_id)
        .join(SERIES, SERIES.c.id == STEPS.c.series_id)
        .where(SERIES.c.list_id == LISTS.c.id, SERIES.c.welcome.is_(True))
        .order_by(STEPS.c.position)
        .limit(1)
        .scalar_subquery()
    )
    bind.execute(sa.update(LISTS).values(welcome_alert_id=first))


def downgrade() -> None:
    _series_to_welcomes()
    op.drop_table("series_entries")
    op.drop_index("ix_series_steps_alert_id", table_name="series_steps")
    op.drop_table("series_steps")
    op.drop_table("series")
