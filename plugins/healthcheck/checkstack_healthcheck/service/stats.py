"""Aggregate reads: availability per window, daily availability bars, hourly stats and status
changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import col

from checkstack_core import Context
from checkstack_core.db import core_rows, utcnow
from checkstack_core.errors import validation_error

from ..contract import (
    STATUS_READ,
    Availability,
    AvailabilityInput,
    AvailabilityWindow,
    DailyAvailability,
    DailyAvailabilityInput,
    DayAvailability,
    HourlyBucket,
    HourlyStats,
    HourlyStatsInput,
    StatusChange,
    StatusChanges,
    StatusChangesInput,
)
from ..models import HourlyRow, StatusChangeRow
from .common import _hour, _readable
from .recording import _DAILY

# -- aggregates and availability -------------------------------------------------------------------

WINDOWS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}


async def availability(ctx: Context, input: AvailabilityInput) -> Availability:
    """``getAvailability``: up (healthy or degraded) runs over all runs, per window."""
    now = utcnow()
    conditions: list[Any] = [col(HourlyRow.system_id) == input.system_id]
    if input.check_id is not None:
        conditions.append(col(HourlyRow.check_id) == input.check_id)
    since = _hour(now - timedelta(days=90))
    rows = await core_rows(
        ctx.session,
        sa_select(
            col(HourlyRow.bucket_start),
            func.sum(HourlyRow.runs),
            func.sum(HourlyRow.healthy + HourlyRow.degraded),
        )
        .where(*conditions, col(HourlyRow.bucket_start) >= since)
        .group_by(col(HourlyRow.bucket_start)),
    )
    windows: dict[str, AvailabilityWindow] = {}
    for name, days in WINDOWS.items():
        # Whole hours: the bucket holding "now - days" counts (a bar covers full hours).
        start = _hour(now - timedelta(days=days))
        runs = sum(int(r[1] or 0) for r in rows if r[0] >= start)
        up = sum(int(r[2] or 0) for r in rows if r[0] >= start)
        windows[name] = AvailabilityWindow(
            percent=round(100.0 * up / runs, 3) if runs else None, runs=runs
        )
    return Availability(system_id=input.system_id, check_id=input.check_id, windows=windows)


_DAILY_FIGURES = (
    sa_select(
        _DAILY.c.system_id,
        _DAILY.c.day,
        func.sum(_DAILY.c.runs),
        func.sum(_DAILY.c.healthy),
        func.sum(_DAILY.c.degraded),
        func.sum(_DAILY.c.unhealthy),
    )
    .where(
        _DAILY.c.system_id.in_(bindparam("ids", expanding=True)),
        _DAILY.c.day >= bindparam("since"),
    )
    .group_by(_DAILY.c.system_id, _DAILY.c.day)
    .order_by(_DAILY.c.system_id, _DAILY.c.day)
)


async def daily_availability(ctx: Context, input: DailyAvailabilityInput) -> DailyAvailability:
    """``getDailyAvailability``: per readable system, its UTC days with runs among the last
    ``days`` (today included), all its checks together; one indexed range read per system."""
    ids = list(dict.fromkeys(input.system_ids))
    admitted = await _readable(ctx, ids, STATUS_READ)
    ids = [i for i in ids if i in admitted]
    out: dict[str, list[DayAvailability]] = {i: [] for i in ids}
    if not ids:
        return DailyAvailability(systems=out)
    since = utcnow().date() - timedelta(days=input.days - 1)
    connection = await ctx.session.connection()
    for system_id, day, runs, healthy, degraded, unhealthy in await connection.execute(
        _DAILY_FIGURES, {"ids": ids, "since": since}
    ):
        runs = int(runs)
        if not runs:
            continue
        out[system_id].append(
            DayAvailability(
                day=day,
                runs=runs,
                healthy=int(healthy),
                degraded=int(degraded),
                unhealthy=int(unhealthy),
                percent=round(100.0 * (int(healthy) + int(degraded)) / runs, 3),
                worst="unhealthy" if unhealthy else "degraded" if degraded else "healthy",
            )
        )
    return DailyAvailability(systems=out)


async def hourly_stats(ctx: Context, input: HourlyStatsInput) -> HourlyStats:
    end = input.to or utcnow()
    start = input.from_ or end - timedelta(hours=24)
    if end <= start:
        raise validation_error([{"message": "to must be after from", "path": ["to"]}])
    conditions: list[Any] = [
        col(HourlyRow.system_id) == input.system_id,
        col(HourlyRow.bucket_start) >= _hour(start),
        col(HourlyRow.bucket_start) < end,
    ]
    if input.check_id is not None:
        conditions.append(col(HourlyRow.check_id) == input.check_id)
    rows = await core_rows(
        ctx.session,
        sa_select(
            col(HourlyRow.check_id),
            col(HourlyRow.bucket_start),
            col(HourlyRow.runs),
            col(HourlyRow.healthy),
            col(HourlyRow.degraded),
            col(HourlyRow.unhealthy),
            col(HourlyRow.latency_sum),
            col(HourlyRow.latency_count),
            col(HourlyRow.p95_latency_ms),
        )
        .where(*conditions)
        .order_by(col(HourlyRow.bucket_start), col(HourlyRow.check_id))
        .limit(24 * 100 * 10),
    )
    return HourlyStats(
        buckets=[
            HourlyBucket(
                check_id=r.check_id,
                bucket_start=r.bucket_start,
                runs=r.runs,
                healthy=r.healthy,
                degraded=r.degraded,
                unhealthy=r.unhealthy,
                avg_latency_ms=round(r.latency_sum / r.latency_count, 3)
                if r.latency_count
                else None,
                p95_latency_ms=r.p95_latency_ms,
            )
            for r in rows
        ]
    )


async def status_changes(ctx: Context, input: StatusChangesInput) -> StatusChanges:
    rows = await core_rows(
        ctx.session,
        sa_select(
            col(StatusChangeRow.system_id),
            col(StatusChangeRow.from_status),
            col(StatusChangeRow.to_status),
            col(StatusChangeRow.suppressed),
            col(StatusChangeRow.at),
        )
        .where(col(StatusChangeRow.system_id) == input.system_id)
        .order_by(col(StatusChangeRow.id).desc())
        .limit(input.limit),
    )
    return StatusChanges(
        changes=[
            StatusChange(
                system_id=r.system_id,
                from_status=r.from_status,
                to_status=r.to_status,
                suppressed=r.suppressed,
                at=r.at,
            )
            for r in rows
        ]
    )
