"""Daily aggregates of runs per check and system (the status page's 90-day uptime bars), filled
from the hourly aggregates already stored.

Revision ID: healthcheck_0002
Revises: healthcheck_0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "healthcheck_0002"
down_revision: str | None = "healthcheck_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "healthcheck_daily",
        sa.Column("system_id", sa.String(length=100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("check_id", sa.String(length=36), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("healthy", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Integer(), nullable=False),
        sa.Column("unhealthy", sa.Integer(), nullable=False),
    )
    op.create_index("ix_healthcheck_daily_check_id", "healthcheck_daily", ["check_id"])
    # Hourly buckets are stored in UTC: the day of a bucket is its UTC date.
    if op.get_bind().dialect.name == "postgresql":
        day = "(bucket_start AT TIME ZONE 'UTC')::date"
    else:
        day = "date(bucket_start)"
    op.execute(
        "INSERT INTO healthcheck_daily "
        "(system_id, day, check_id, runs, healthy, degraded, unhealthy) "
        f"SELECT system_id, {day}, check_id, SUM(runs), SUM(healthy), SUM(degraded), "
        f"SUM(unhealthy) FROM healthcheck_hourly GROUP BY system_id, {day}, check_id"
    )


def downgrade() -> None:
    op.drop_table("healthcheck_daily")
