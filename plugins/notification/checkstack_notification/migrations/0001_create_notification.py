"""Create the notification plugin's tables: channels, users' channel choices, subscriptions,
the inbox, integrations and the delivery outbox.

Revision ID: notification_0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("notification",)
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "notification_channel",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("config", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "notification_channel_choice",
        sa.Column("user_id", sa.String(length=100), primary_key=True),
        sa.Column("channel_id", sa.String(length=100), primary_key=True),
    )
    op.create_index(
        "ix_notification_channel_choice_channel_id", "notification_channel_choice", ["channel_id"]
    )
    op.create_table(
        "notification_subscription",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("owner_kind", sa.String(length=10), nullable=False),
        sa.Column("owner_id", sa.String(length=100), nullable=False),
        sa.Column("target_kind", sa.String(length=10), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column("min_importance", sa.String(length=10), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint(
            "owner_kind", "owner_id", "target_kind", "target_id", name="notification_sub_unique"
        ),
    )
    op.create_index(
        "ix_notification_subscription_target",
        "notification_subscription",
        ["target_kind", "target_id"],
    )
    op.create_table(
        "notification_notification",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("trigger_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("importance", sa.String(length=10), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        _ts("read_at", nullable=True),
        _ts("created_at"),
        sa.UniqueConstraint("user_id", "trigger_key", name="notification_once_per_user"),
    )
    op.create_index(
        "ix_notification_notification_inbox",
        "notification_notification",
        ["user_id", "created_at"],
    )
    op.create_table(
        "notification_notification_system",
        sa.Column(
            "notification_id",
            sa.String(length=100),
            sa.ForeignKey("notification_notification.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("system_id", sa.String(length=100), primary_key=True),
    )
    op.create_index(
        "ix_notification_notification_system_system_id",
        "notification_notification_system",
        ["system_id"],
    )
    op.create_table(
        "notification_integration",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("headers", sa.String(), nullable=False),
        sa.Column("event_types", sa.String(), nullable=False),
        sa.Column("system_ids", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.String(length=100), primary_key=True),
        sa.Column("dedup_key", sa.String(length=400), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("last_attempt_at", nullable=True),
        _ts("next_attempt_at", nullable=True),
        _ts("locked_until", nullable=True),
        _ts("delivered_at", nullable=True),
        sa.UniqueConstraint("dedup_key", name="notification_delivery_once"),
    )
    op.create_index(
        "ix_notification_delivery_due", "notification_delivery", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_notification_delivery_target",
        "notification_delivery",
        ["target", "target_id", "last_attempt_at"],
    )
    op.create_index(
        "ix_notification_delivery_created", "notification_delivery", ["target", "created_at"]
    )


def downgrade() -> None:
    for table in (
        "notification_delivery",
        "notification_integration",
        "notification_notification_system",
        "notification_notification",
        "notification_subscription",
        "notification_channel_choice",
        "notification_channel",
    ):
        op.drop_table(table)
