"""Create the incident, affected-system and timeline tables.

Revision ID: incident_0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "incident_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("incident",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident_incident",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(length=36), nullable=False, unique=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("suppress_notifications", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_kind", sa.String(length=16), nullable=True),
        sa.Column("created_by_id", sa.String(length=100), nullable=True),
        sa.Column("created_by_name", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_incident_incident_status", "incident_incident", ["status"])
    op.create_index("ix_incident_incident_created_at", "incident_incident", ["created_at"])

    op.create_table(
        "incident_system",
        sa.Column(
            "incident_id",
            sa.String(length=36),
            sa.ForeignKey("incident_incident.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("system_id", sa.String(length=100), primary_key=True),
    )
    op.create_index("ix_incident_system_system_id", "incident_system", ["system_id"])

    op.create_table(
        "incident_update",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(length=36), nullable=False, unique=True),
        sa.Column(
            "incident_id",
            sa.String(length=36),
            sa.ForeignKey("incident_incident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=100), nullable=True),
        sa.Column("author_name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_incident_update_incident_id", "incident_update", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_update")
    op.drop_table("incident_system")
    op.drop_table("incident_incident")
