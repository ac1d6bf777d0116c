"""The notification plugin's tables (names prefixed ``notification_``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow


class ChannelRow(SQLModel, table=True):
    """A channel; ``config`` is JSON with every secret stored as ``enc:v1:...``."""

    __tablename__ = "notification_channel"

    id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    config: str
    enabled: bool = True
    rate_limit_per_minute: int = 60
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ChannelChoiceRow(SQLModel, table=True):
    """A user's choice of a channel for their notifications."""

    __tablename__ = "notification_channel_choice"

    user_id: str = Field(primary_key=True, max_length=100)
    channel_id: str = Field(primary_key=True, max_length=100, index=True)


class SubscriptionRow(SQLModel, table=True):
    """A user's or a team's subscription to a system or a group."""

    __tablename__ = "notification_subscription"
    __table_args__ = (
        sa.UniqueConstraint(
            "owner_kind", "owner_id", "target_kind", "target_id", name="notification_sub_unique"
        ),
        sa.Index("ix_notification_subscription_target", "target_kind", "target_id"),
    )

    id: str = Field(primary_key=True, max_length=100)
    owner_kind: str = Field(max_length=10)
    owner_id: str = Field(max_length=100)
    target_kind: str = Field(max_length=10)
    target_id: str = Field(max_length=100)
    min_importance: str = Field(max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class NotificationRow(SQLModel, table=True):
    """One entry of one user's inbox; one per user and trigger (``trigger_key``)."""

    __tablename__ = "notification_notification"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "trigger_key", name="notification_once_per_user"),
        sa.Index("ix_notification_notification_inbox", "user_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=100)
    user_id: str = Field(max_length=100)
    trigger_key: str = Field(max_length=200)
    kind: str = Field(max_length=20)
    event: str = Field(max_length=200)
    title: str = Field(max_length=500)
    body: str
    importance: str = Field(max_length=10)
    link: str | None = Field(default=None, max_length=500)
    read_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class NotificationSystemRow(SQLModel, table=True):
    """The systems a notification is about (those its user could read): reads filter on them."""

    __tablename__ = "notification_notification_system"

    notification_id: str = Field(
        primary_key=True,
        max_length=100,
        foreign_key="notification_notification.id",
        ondelete="CASCADE",
    )
    system_id: str = Field(primary_key=True, max_length=100, index=True)


class IntegrationRow(SQLModel, table=True):
    """An outgoing webhook; ``secret`` is stored encrypted, lists as JSON."""

    __tablename__ = "notification_integration"

    id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    secret: str
    headers: str = "{}"
    event_types: str = "[]"
    system_ids: str = "[]"
    enabled: bool = True
    rate_limit_per_minute: int = 60
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class DeliveryRow(SQLModel, table=True):
    """The outbox: one message for one channel (and user) or integration, and its log.

    Written in the transaction that handles the trigger; a job delivers it. ``locked_until``
    is the lease of the attempt in flight (a process killed mid-attempt leaves it to expire).
    """

    __tablename__ = "notification_delivery"
    __table_args__ = (
        sa.UniqueConstraint("dedup_key", name="notification_delivery_once"),
        sa.Index("ix_notification_delivery_due", "status", "next_attempt_at"),
        sa.Index("ix_notification_delivery_target", "target", "target_id", "last_attempt_at"),
        sa.Index("ix_notification_delivery_created", "target", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=100)
    dedup_key: str = Field(max_length=400)
    target: str = Field(max_length=20)
    target_id: str = Field(max_length=100)
    user_id: str | None = Field(default=None, max_length=100)
    event: str = Field(max_length=200)
    #: The JSON body to send (a message for channels, the event envelope for integrations).
    message: str
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    duration_ms: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


MODELS = [
    ChannelRow,
    ChannelChoiceRow,
    SubscriptionRow,
    NotificationRow,
    NotificationSystemRow,
    IntegrationRow,
    DeliveryRow,
]
