"""Retention: the daily job drops delivery logs and inbox entries past ``retention_days``;
pending deliveries stay, whatever their age (they still have attempts to make)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from checkstack_notification import service
from checkstack_notification.models import DeliveryRow, NotificationRow, NotificationSystemRow
from sqlmodel import col, select

from checkstack_core.db import utcnow


def _entry(entry_id: str, user_id: str, age: timedelta) -> NotificationRow:
    return NotificationRow(
        id=entry_id,
        user_id=user_id,
        trigger_key=entry_id,
        kind="health",
        event="healthcheck.system.unhealthy",
        title=entry_id,
        body="",
        importance="critical",
        created_at=utcnow() - age,
    )


def _delivery(delivery_id: str, status: str, age: timedelta) -> DeliveryRow:
    return DeliveryRow(
        id=delivery_id,
        dedup_key=delivery_id,
        target="channel",
        target_id="c1",
        event="healthcheck.system.unhealthy",
        message="{}",
        status=status,
        created_at=utcnow() - age,
    )


async def test_old_logs_and_inbox_entries_go_and_pending_deliveries_stay(
    checkstack_host: Any, make_user: Any
) -> None:
    _client, caller = await make_user()
    old, recent = timedelta(days=31), timedelta(days=29)  # the default keeps 30 days
    async with checkstack_host.db.session() as session:
        session.add_all([_entry("old", caller.id, old), _entry("recent", caller.id, recent)])
        await session.flush()
        session.add(NotificationSystemRow(notification_id="old", system_id="s1"))
        session.add_all(
            [
                _delivery("old-delivered", "delivered", old),
                _delivery("old-failed", "failed", old),
                _delivery("old-pending", "pending", old),
                _delivery("recent-delivered", "delivered", recent),
            ]
        )
        await session.commit()

    async with checkstack_host.service_context("notification") as ctx:
        removed = await service.apply_retention(ctx)
    assert removed == {"deliveries": 2, "notifications": 1}

    async with checkstack_host.db.session() as session:
        kept = set((await session.exec(select(col(DeliveryRow.id)))).all())
        entries = set((await session.exec(select(col(NotificationRow.id)))).all())
        systems = (await session.exec(select(NotificationSystemRow))).all()
    assert kept == {"old-pending", "recent-delivered"}
    assert entries == {"recent"}
    assert systems == []  # the old entry's systems went with it


@pytest.mark.parametrize("days", [0, 3651])
def test_retention_days_out_of_range_are_refused(days: int) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        service.Settings.load({"retention_days": days})


async def test_the_retention_job_runs_daily(checkstack_host: Any) -> None:
    scheduled = await checkstack_host.jobs.get("notification:retention")
    assert scheduled is not None
    assert scheduled.name == "notification.retention"
    assert scheduled.interval == timedelta(days=1)
