"""Retention: deleting raw runs, aggregates and status changes past their days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col

from checkstack_core import Context
from checkstack_core.db import utcnow

from ..contract import DAILY_DAYS
from ..models import DailyRow, HourlyRow, RunRow, StatusChangeRow
from .common import _hour
from .settings import runtime

# -- retention -------------------------------------------------------------------------------------


async def apply_retention(ctx: Context) -> dict[str, int]:
    """Delete raw runs, hourly aggregates and status changes past their retention."""
    settings = runtime(ctx).settings
    now = utcnow()
    raw_cutoff = now - timedelta(days=settings.raw_retention_days)
    hourly_cutoff = _hour(now - timedelta(days=settings.hourly_retention_days))
    session = ctx.session
    runs = await session.exec(delete(RunRow).where(col(RunRow.started_at) < raw_cutoff))
    hourly = await session.exec(
        delete(HourlyRow).where(col(HourlyRow.bucket_start) < hourly_cutoff)
    )
    changes = await session.exec(
        delete(StatusChangeRow).where(col(StatusChangeRow.at) < hourly_cutoff)
    )
    # Daily rows are small: kept at least as long as the 90-day uptime bars show.
    daily_cutoff = (now - timedelta(days=max(settings.hourly_retention_days, DAILY_DAYS))).date()
    daily = await session.exec(delete(DailyRow).where(col(DailyRow.day) < daily_cutoff))
    return {
        "runs": runs.rowcount,
        "hourly": hourly.rowcount,
        "daily": daily.rowcount,
        "statusChanges": changes.rowcount,
    }
