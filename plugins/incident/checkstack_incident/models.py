"""The incident plugin's tables (names prefixed ``incident_``).

Incidents and timeline entries have a public uuid ``id`` and an internal auto-increment ``seq``:
``seq`` breaks ties between equal timestamps so lists and timelines keep a stable order. Affected
systems are catalog system ids (no foreign key: another plugin's table); the catalog's
``catalog.system.deleted`` event removes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow


def _incident_fk(*, primary_key: bool = False) -> sa.Column[Any]:
    return sa.Column(
        sa.String(36),
        sa.ForeignKey("incident_incident.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
        index=not primary_key,
    )


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incident_incident"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    title: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    description: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    severity: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False, index=True))
    suppress_notifications: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UtcDateTime, nullable=False, index=True)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UtcDateTime, nullable=False)
    )
    resolved_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UtcDateTime, nullable=True)
    )
    created_by_kind: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(16), nullable=True)
    )
    created_by_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(100), nullable=True)
    )
    created_by_name: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )


class IncidentSystem(SQLModel, table=True):
    """An affected system of an incident."""

    __tablename__ = "incident_system"

    incident_id: str = Field(sa_column=_incident_fk(primary_key=True))
    system_id: str = Field(
        sa_column=sa.Column(sa.String(100), primary_key=True, nullable=False, index=True)
    )


class TimelineRow(SQLModel, table=True):
    """One entry of an incident's timeline."""

    __tablename__ = "incident_update"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(sa_column=sa.Column(sa.String(36), nullable=False, unique=True))
    incident_id: str = Field(sa_column=_incident_fk())
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    message: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    status: str | None = Field(default=None, sa_column=sa.Column(sa.String(16), nullable=True))
    from_status: str | None = Field(default=None, sa_column=sa.Column(sa.String(16), nullable=True))
    author_kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    author_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(100), nullable=True))
    author_name: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UtcDateTime, nullable=False)
    )
