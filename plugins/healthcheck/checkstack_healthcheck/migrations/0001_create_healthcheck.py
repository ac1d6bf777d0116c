"""Create the health check, assignment, run, hourly aggregate, system health and status change
tables.

Revision ID: healthcheck_0001
Revises:
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "healthcheck_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("healthcheck",)
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "healthcheck_check",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "healthcheck_assignment",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column(
            "check_id",
            sa.String(length=36),
            sa.ForeignKey("healthcheck_check.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("system_id", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("thresholds", sa.Text(), nullable=True),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        sa.Column("next_run_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("healthy_streak", sa.Integer(), nullable=False),
        sa.Column("failure_streak", sa.Integer(), nullable=False),
        sa.Column("unhealthy_streak", sa.Integer(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_latency_ms", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("check_id", "system_id"),
    )
    op.create_index("ix_healthcheck_assignment_check_id", "healthcheck_assignment", ["check_id"])
    op.create_index("ix_healthcheck_assignment_system_id", "healthcheck_assignment", ["system_id"])
    op.create_index(
        "ix_healthcheck_assignment_next_run_ms", "healthcheck_assignment", ["next_run_ms"]
    )
    op.create_table(
        "healthcheck_run",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("check_id", sa.String(length=36), nullable=False),
        sa.Column("system_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_healthcheck_run_system_id_id", "healthcheck_run", ["system_id", "id"])
    op.create_index("ix_healthcheck_run_check_id_id", "healthcheck_run", ["check_id", "id"])
    op.create_index("ix_healthcheck_run_started_at", "healthcheck_run", ["started_at"])
    op.create_table(
        "healthcheck_hourly",
        sa.Column("check_id", sa.String(length=36), primary_key=True),
        sa.Column("system_id", sa.String(length=100), primary_key=True),
        sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("healthy", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Integer(), nullable=False),
        sa.Column("unhealthy", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.Column("p95_latency_ms", sa.Float(), nullable=True),
        sa.Column("histogram", sa.Text(), nullable=False),
    )
    op.create_table(
        "healthcheck_system",
        sa.Column("system_id", sa.String(length=100), primary_key=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "healthcheck_status_change",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("system_id", sa.String(length=100), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_healthcheck_status_change_system_id", "healthcheck_status_change", ["system_id"]
    )


def downgrade() -> None:
    for table in (
        "healthcheck_status_change",
        "healthcheck_system",
        "healthcheck_hourly",
        "healthcheck_run",
        "healthcheck_assignment",
        "healthcheck_check",
    ):
        op.drop_table(table)
