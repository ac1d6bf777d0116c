"""Create the auth tables and seed the built-in roles.

Revision ID: auth_0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("auth",)
depends_on: str | Sequence[str] | None = None

SYSTEM_ROLES = [
    (
        "admin",
        "Administrators",
        "Holds every access rule, including those of plugins installed later",
    ),
    ("users", "Users", "Every logged-in user; holds the default rules of every plugin"),
    ("anonymous", "Anonymous", "Every caller, logged in or not; holds the public rules"),
    ("applications", "Applications", "Given to every new application (API key)"),
]


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(name: str, target: str, primary_key: bool = False) -> sa.Column[Any]:
    return sa.Column(
        name,
        sa.String(36),
        sa.ForeignKey(target, ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    meta = op.create_table(
        "auth_meta",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lock_counter", sa.Integer(), nullable=False),
    )
    op.create_table(
        "auth_user",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "auth_session",
        sa.Column("id", sa.String(36), primary_key=True),
        _fk("user_id", "auth_user.id"),
        sa.Column("secret_digest", sa.String(80), nullable=False),
        sa.Column("user_agent", sa.String(256), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
    )
    op.create_index("ix_auth_session_user_id", "auth_session", ["user_id"])
    role = op.create_table(
        "auth_role",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "auth_role_rule",
        _fk("role_id", "auth_role.id", primary_key=True),
        sa.Column("rule_id", sa.String(200), primary_key=True),
    )
    op.create_table(
        "auth_removed_default_rule",
        _fk("role_id", "auth_role.id", primary_key=True),
        sa.Column("rule_id", sa.String(200), primary_key=True),
    )
    op.create_table(
        "auth_user_role",
        _fk("user_id", "auth_user.id", primary_key=True),
        _fk("role_id", "auth_role.id", primary_key=True),
    )
    op.create_index("ix_auth_user_role_role_id", "auth_user_role", ["role_id"])
    op.create_table(
        "auth_application",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("secret_digest", sa.String(80), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("last_used_at", nullable=True),
        _ts("expires_at", nullable=True),
    )
    op.create_table(
        "auth_application_role",
        _fk("application_id", "auth_application.id", primary_key=True),
        _fk("role_id", "auth_role.id", primary_key=True),
    )
    op.create_index("ix_auth_application_role_role_id", "auth_application_role", ["role_id"])
    op.create_table(
        "auth_team",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.String(500), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "auth_team_user",
        _fk("user_id", "auth_user.id", primary_key=True),
        _fk("team_id", "auth_team.id", primary_key=True),
    )
    op.create_index("ix_auth_team_user_team_id", "auth_team_user", ["team_id"])
    op.create_table(
        "auth_team_application",
        _fk("application_id", "auth_application.id", primary_key=True),
        _fk("team_id", "auth_team.id", primary_key=True),
    )
    op.create_index("ix_auth_team_application_team_id", "auth_team_application", ["team_id"])
    op.create_table(
        "auth_team_manager",
        _fk("team_id", "auth_team.id", primary_key=True),
        _fk("user_id", "auth_user.id", primary_key=True),
    )
    op.create_index("ix_auth_team_manager_user_id", "auth_team_manager", ["user_id"])
    op.create_table(
        "auth_resource_grant",
        sa.Column("resource_type", sa.String(100), primary_key=True),
        sa.Column("resource_id", sa.String(200), primary_key=True),
        _fk("team_id", "auth_team.id", primary_key=True),
        sa.Column("level", sa.String(10), nullable=False),
    )
    op.create_index("ix_auth_resource_grant_team_id", "auth_resource_grant", ["team_id"])
    op.create_table(
        "auth_resource_settings",
        sa.Column("resource_type", sa.String(100), primary_key=True),
        sa.Column("resource_id", sa.String(200), primary_key=True),
        sa.Column("team_only", sa.Boolean(), nullable=False),
    )
    op.bulk_insert(meta, [{"id": 1, "lock_counter": 0}])
    now = datetime.now(UTC)
    op.bulk_insert(
        role,
        [
            {"id": rid, "name": name, "description": text, "system": True, "created_at": now}
            for rid, name, text in SYSTEM_ROLES
        ],
    )


def downgrade() -> None:
    for table in (
        "auth_resource_settings",
        "auth_resource_grant",
        "auth_team_manager",
        "auth_team_application",
        "auth_team_user",
        "auth_team",
        "auth_application_role",
        "auth_application",
        "auth_user_role",
        "auth_removed_default_rule",
        "auth_role_rule",
        "auth_role",
        "auth_session",
        "auth_user",
        "auth_meta",
    ):
        op.drop_table(table)
