"""editors and alerts: TOTP enrolment, custom layouts, indexes for paging and search

Revision ID: 0002_editors
Revises: 0001
Create Date: 2026-11-27 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_editors"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGRAM_INDEXES = {
    "ix_subscribers_email_trgm": "email",
    "ix_subscribers_name_search_trgm": "name_search",
}


def upgrade() -> None:
    with op.batch_alter_table("editors") as batch_op:
        batch_op.add_column(sa.Column("totp_pending_secret", sa.String(length=64), nullable=True))
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("layout_mjml", sa.Text(), nullable=True))
    with op.batch_alter_table("subscribers") as batch_op:
        batch_op.add_column(sa.Column("name_search", sa.String(length=200), nullable=True))
    _fill_name_search()
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.create_index(
            "ix_subscriptions_list_subscriber", ["list_id", "subscriber_id"], unique=False
        )
        batch_op.create_index(
            "ix_subscriptions_status_subscriber", ["status", "subscriber_id"], unique=False
        )
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.create_index("ix_audit_log_action", ["action", "id"], unique=False)
    _search_indexes()


def _fill_name_search() -> None:
    # Python's lower() knows every script; SQLite's knows only ASCII.
    bind = op.get_bind()
    table = sa.table(
        "subscribers", sa.column("id"), sa.column("name"), sa.column("name_search")
    )
    rows = bind.execute(sa.select(table.c.id, table.c.name).where(table.c.name.is_not(None)))
    updates = [{"key": i, "value": name.lower()} for i, name in rows]
    if updates:
        bind.execute(
            table.update().where(table.c.id == sa.bindparam("key")).values(
                name_search=sa.bindparam("value")
            ),
            updates,
        )


def _search_indexes() -> None:
    # Substring search over a million addresses needs trigrams. pg_trgm ships with PostgreSQL
    # and is a trusted extension (13+), so the database owner may create it. Where it cannot
    # be had (and on SQLite, which has no such index) an empty partial index of the same name
    # stands in, so that the schema still matches the models; search then scans.
    if op.get_bind().dialect.name == "postgresql" and _pg_trgm():
        for name, column in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON subscribers USING gin ({column} gin_trgm_ops)")
        return
    never = "false" if op.get_bind().dialect.name == "postgresql" else "0"
    for name, column in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON subscribers ({column}) WHERE {never}")


def _pg_trgm() -> bool:
    bind = op.get_bind()
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False  # not allowed here: an operator can create it and rebuild the indexes
    return True


def downgrade() -> None:
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index("ix_audit_log_action")
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_index("ix_subscriptions_status_subscriber")
        batch_op.drop_index("ix_subscriptions_list_subscriber")
    with op.batch_alter_table("subscribers") as batch_op:
        batch_op.drop_column("name_search")
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("layout_mjml")
    with op.batch_alter_table("editors") as batch_op:
        batch_op.drop_column("totp_pending_secret")
