"""procrastinate's schema (its jobs, workers, events and periodic-defer tables and functions) and
the engine's own tables: schedules of checkstack jobs and stored event payloads.

PostgreSQL only: on SQLite this revision does nothing (the engine refuses to start there), so
installing the plugin never breaks a SQLite deployment.

procrastinate's ``schema.sql`` is applied as installed; ``check_schema_version`` (at engine
start) refuses a procrastinate release that brings schema migrations newer than
:data:`checkstack_procrastinate.schema.APPLIED_THROUGH` until a revision here applies them.

Revision ID: procrastinate_0001
Revises:
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "procrastinate_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("procrastinate",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from checkstack_procrastinate.schema import apply_sql, procrastinate_schema

    apply_sql(bind, procrastinate_schema())
    op.create_table(
        "procrastinate_checkstack_schedules",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column("every_us", sa.BigInteger(), nullable=True),
        sa.Column("cron", sa.Text(), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("last_ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "procrastinate_checkstack_events",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column("emitted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_procrastinate_checkstack_events_emitted_at",
        "procrastinate_checkstack_events",
        ["emitted_at"],
    )


def downgrade() -> None:
    raise NotImplementedError("Restore a backup to go back (docs/deployers.md)")
