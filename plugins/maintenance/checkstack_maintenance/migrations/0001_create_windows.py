"""Create the maintenance window, window-system and timeline tables.

Revision ID: maintenance_0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "maintenance_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("maintenance",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "maintenance_window",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("suppress_notifications", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_kind", sa.String(length=20), nullable=True),
        sa.Column("created_by_id", sa.String(length=100), nullable=True),
        sa.Column("created_by_name", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_maintenance_window_start_at", "maintenance_window", ["start_at"])
    op.create_index("ix_maintenance_window_status", "maintenance_window", ["status"])
    op.create_table(
        "maintenance_window_system",
        sa.Column(
            "window_id",
            sa.String(length=36),
            sa.ForeignKey("maintenance_window.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("system_id", sa.String(length=100), primary_key=True),
    )
    op.create_index(
        "ix_maintenance_window_system_system_id", "maintenance_window_system", ["system_id"]
    )
    op.create_table(
        "maintenance_timeline",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(length=36), nullable=False, unique=True),
        sa.Column(
            "window_id",
            sa.String(length=36),
            sa.ForeignKey("maintenance_window.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("author_kind", sa.String(length=20), nullable=False),
        sa.Column("author_id", sa.String(length=100), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_maintenance_timeline_window_id", "maintenance_timeline", ["window_id"])


def downgrade() -> None:
    op.drop_table("maintenance_timeline")
    op.drop_table("maintenance_window_system")
    op.drop_table("maintenance_window")
