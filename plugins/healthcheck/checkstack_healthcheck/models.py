"""The healthcheck plugin's tables (names prefixed with the plugin id).

Systems are the catalog's: referenced by id without a foreign key (plugins never touch another
plugin's tables); the ``catalog.system.deleted`` event keeps the references clean.

Scheduling lives on the assignment row: ``next_run_ms`` (epoch milliseconds, ``NULL`` while the
assignment is disabled or its check paused) and ``interval_ms`` (copied from the check). Every
process claims due runs with one conditional ``UPDATE`` of ``next_run_ms``, so two processes never
run the same slot.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow

#: 64-bit on PostgreSQL; SQLite's INTEGER PRIMARY KEY (the rowid) is 64-bit and autoincrements.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class CheckRow(SQLModel, table=True):
    """A health check definition (reusable across systems)."""

    __tablename__ = "healthcheck_check"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    strategy_id: str = Field(max_length=100)
    #: JSON; secret fields hold ``enc:v1:...`` tokens.
    config: str = Field(sa_type=sa.Text)
    interval_seconds: int
    timeout_seconds: float
    paused: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AssignmentRow(SQLModel, table=True):
    """A check assigned to a system, its schedule and its evaluated state."""

    __tablename__ = "healthcheck_assignment"
    __table_args__ = (sa.UniqueConstraint("check_id", "system_id"),)

    id: str = Field(primary_key=True, max_length=36)
    check_id: str = Field(
        max_length=36, foreign_key="healthcheck_check.id", ondelete="CASCADE", index=True
    )
    system_id: str = Field(max_length=100, index=True)
    enabled: bool = True
    #: JSON of the thresholds (``None``: the defaults).
    thresholds: str | None = Field(default=None, sa_type=sa.Text)
    interval_ms: int = Field(sa_type=sa.BigInteger)
    next_run_ms: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    status: str = Field(default="healthy", max_length=20)
    healthy_streak: int = 0
    failure_streak: int = 0
    unhealthy_streak: int = 0
    last_run_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_status: str | None = Field(default=None, max_length=20)
    last_latency_ms: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RunRow(SQLModel, table=True):
    """One run; ``system_id`` is ``NULL`` for a test run (``runNow`` without a system)."""

    __tablename__ = "healthcheck_run"
    # Keyset pages of one system's or one check's runs read an index in order.
    __table_args__ = (
        sa.Index("ix_healthcheck_run_system_id_id", "system_id", "id"),
        sa.Index("ix_healthcheck_run_check_id_id", "check_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    check_id: str = Field(max_length=36)
    system_id: str | None = Field(default=None, max_length=100)
    status: str = Field(max_length=20)
    latency_ms: float | None = None
    message: str = Field(sa_type=sa.Text)
    #: JSON of the strategy's structured result.
    result: str | None = Field(default=None, sa_type=sa.Text)
    started_at: datetime = Field(sa_type=UtcDateTime, index=True)


class HourlyRow(SQLModel, table=True):
    """Runs of one check on one system in one hour, kept as runs land.

    ``histogram`` is a JSON object of latency bucket → count (logarithmic buckets, 5 % wide) from
    which the p95 is read.
    """

    __tablename__ = "healthcheck_hourly"

    check_id: str = Field(primary_key=True, max_length=36)
    system_id: str = Field(primary_key=True, max_length=100)
    bucket_start: datetime = Field(primary_key=True, sa_type=UtcDateTime)
    runs: int = 0
    healthy: int = 0
    degraded: int = 0
    unhealthy: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    p95_latency_ms: float | None = None
    histogram: str = Field(default="{}", sa_type=sa.Text)


class DailyRow(SQLModel, table=True):
    """Runs of one check on one system on one UTC day, counted as runs land: the 90-day
    uptime bars read 90 of these per system (the hourly rows would be 24 times as many).

    The key leads with the system and the day, so a page's systems are one range read each."""

    __tablename__ = "healthcheck_daily"

    system_id: str = Field(primary_key=True, max_length=100)
    day: date = Field(primary_key=True)
    check_id: str = Field(primary_key=True, max_length=36, index=True)
    runs: int = 0
    healthy: int = 0
    degraded: int = 0
    unhealthy: int = 0


class SystemRow(SQLModel, table=True):
    """A system's current health (the worst of its enabled checks)."""

    __tablename__ = "healthcheck_system"

    system_id: str = Field(primary_key=True, max_length=100)
    status: str = Field(default="healthy", max_length=20)
    changed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class StatusChangeRow(SQLModel, table=True):
    """A recorded change of a system's health."""

    __tablename__ = "healthcheck_status_change"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    system_id: str = Field(max_length=100, index=True)
    from_status: str = Field(max_length=20)
    to_status: str = Field(max_length=20)
    suppressed: bool = False
    at: datetime = Field(sa_type=UtcDateTime)
