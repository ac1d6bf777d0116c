"""Create the catalog tables: systems, groups and their memberships.

Revision ID: catalog_0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "catalog_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("catalog",)
depends_on: str | Sequence[str] | None = None


def _named_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=800), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(f"ix_{name}_name_key", name, ["name_key"], unique=True)


def upgrade() -> None:
    _named_table("catalog_system")
    _named_table("catalog_group")
    op.create_table(
        "catalog_system_group",
        sa.Column(
            "system_id",
            sa.String(length=36),
            sa.ForeignKey("catalog_system.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "group_id",
            sa.String(length=36),
            sa.ForeignKey("catalog_group.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_catalog_system_group_group_id", "catalog_system_group", ["group_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("catalog_system_group")
    op.drop_table("catalog_group")
    op.drop_table("catalog_system")
