"""The maintenance plugin's tables (names prefixed with the plugin id).

Systems are the catalog's: referenced by id without a foreign key (plugins never touch another
plugin's tables); the ``catalog.system.deleted`` event keeps the references clean.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow


class WindowRow(SQLModel, table=True):
    """A maintenance window."""

    __tablename__ = "maintenance_window"

    id: str = Field(primary_key=True, max_length=36)
    title: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_type=sa.Text)
    start_at: datetime = Field(sa_type=UtcDateTime, index=True)
    end_at: datetime = Field(sa_type=UtcDateTime)
    suppress_notifications: bool = False
    status: str = Field(max_length=20, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    created_by_kind: str | None = Field(default=None, max_length=20)
    created_by_id: str | None = Field(default=None, max_length=100)
    created_by_name: str | None = Field(default=None, max_length=200)


class WindowSystemRow(SQLModel, table=True):
    """A system a window affects."""

    __tablename__ = "maintenance_window_system"

    window_id: str = Field(
        primary_key=True, max_length=36, foreign_key="maintenance_window.id", ondelete="CASCADE"
    )
    system_id: str = Field(primary_key=True, max_length=100, index=True)


class TimelineRow(SQLModel, table=True):
    """One timeline entry. ``seq`` (insertion order) breaks ties between equal timestamps."""

    __tablename__ = "maintenance_timeline"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=36, unique=True)
    window_id: str = Field(
        max_length=36, foreign_key="maintenance_window.id", ondelete="CASCADE", index=True
    )
    kind: str = Field(max_length=20)
    message: str = Field(sa_type=sa.Text)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    author_kind: str = Field(max_length=20)
    author_id: str | None = Field(default=None, max_length=100)
    author_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
