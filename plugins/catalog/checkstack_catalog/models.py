"""The catalog's tables (names prefixed ``catalog_``).

Names are unique ignoring case and surrounding spaces: ``name_key`` holds the normalised name
(trimmed, Unicode case-folded) under a unique index, so two concurrent creates of "Api" and
"API " cannot both commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow

NAME_KEY_LENGTH = 800  # case folding may lengthen a 200-character name ("ß" → "ss")


class SystemRow(SQLModel, table=True):
    __tablename__ = "catalog_system"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    name_key: str = Field(sa_column=sa.Column(sa.String(NAME_KEY_LENGTH), nullable=False))
    description: str | None = Field(default=None, max_length=2000)
    # "metadata" is reserved on SQLAlchemy models: the attribute is ``meta``, the column keeps
    # the wire name.
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column("metadata", sa.JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

    __table_args__ = (sa.Index("ix_catalog_system_name_key", "name_key", unique=True),)


class GroupRow(SQLModel, table=True):
    __tablename__ = "catalog_group"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    name_key: str = Field(sa_column=sa.Column(sa.String(NAME_KEY_LENGTH), nullable=False))
    description: str | None = Field(default=None, max_length=2000)
    meta: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column("metadata", sa.JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

    __table_args__ = (sa.Index("ix_catalog_group_name_key", "name_key", unique=True),)


class MembershipRow(SQLModel, table=True):
    """System ``system_id`` is in group ``group_id``. Deleting either side removes the row."""

    __tablename__ = "catalog_system_group"

    system_id: str = Field(
        sa_column=sa.Column(
            sa.String(36),
            sa.ForeignKey("catalog_system.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    group_id: str = Field(
        sa_column=sa.Column(
            sa.String(36),
            sa.ForeignKey("catalog_group.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


MODELS = [SystemRow, GroupRow, MembershipRow]
