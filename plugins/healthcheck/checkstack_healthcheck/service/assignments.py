"""Assignments of checks to catalog systems: assigning (with thresholds), unassigning, and
forgetting a deleted system."""

from __future__ import annotations

import uuid
from typing import cast

import msgspec
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, NotFound
from checkstack_core.db import conflict_insert, utcnow
from checkstack_core.errors import validation_error

from ..contract import (
    CHECK_CHANGED,
    AssignInput,
    Assignment,
    Status,
    Unassigned,
    UnassignInput,
    WindowThresholds,
)
from ..models import AssignmentRow, DailyRow, HourlyRow, RunRow, StatusChangeRow, SystemRow
from .checks import _load_check, _reschedule
from .common import _thresholds
from .health import reevaluate_systems

# -- assignments -----------------------------------------------------------------------------------


async def _require_system(ctx: Context, system_id: str) -> None:
    resolved = await ctx.call("catalog", "resolveSystems", {"ids": [system_id]}, as_service=True)
    if system_id in msgspec.to_builtins(resolved)["missing"]:
        raise NotFound(f"System not found: {system_id}")


async def _ensure_system_row(session: AsyncSession, system_id: str) -> None:
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    table = SystemRow.__table__  # type: ignore[attr-defined]
    await connection.execute(
        conflict_insert(connection.dialect.name, table).on_conflict_do_nothing(),
        {"system_id": system_id, "status": "healthy"},
    )


async def assign(ctx: Context, input: AssignInput) -> Assignment:
    session = ctx.session
    check = await _load_check(session, input.id)
    await _require_system(ctx, input.system_id)
    thresholds = input.thresholds
    if isinstance(thresholds, WindowThresholds) and (
        max(thresholds.degraded_at, thresholds.unhealthy_at) > thresholds.window_size
    ):
        raise validation_error(
            [
                {
                    "message": "degradedAt and unhealthyAt cannot exceed windowSize",
                    "path": ["thresholds"],
                }
            ]
        )
    stored_thresholds = None if thresholds is None else msgspec.json.encode(thresholds).decode()
    row = (
        await session.exec(
            select(AssignmentRow).where(
                col(AssignmentRow.check_id) == check.id,
                col(AssignmentRow.system_id) == input.system_id,
            )
        )
    ).one_or_none()
    now = utcnow()
    if row is None:
        row = AssignmentRow(
            id=str(uuid.uuid4()),
            check_id=check.id,
            system_id=input.system_id,
            enabled=input.enabled,
            thresholds=stored_thresholds,
            interval_ms=check.interval_seconds * 1000,
            next_run_ms=None,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    else:
        row.enabled = input.enabled
        row.thresholds = stored_thresholds
        row.updated_at = now
    await session.flush()
    await _ensure_system_row(session, input.system_id)
    await _reschedule(session, check)
    await reevaluate_systems(ctx, [input.system_id])
    await ctx.emit(CHECK_CHANGED, {"checkId": check.id})
    await session.refresh(row)
    return Assignment(
        check_id=row.check_id,
        system_id=row.system_id,
        enabled=row.enabled,
        thresholds=_thresholds(row.thresholds),
        status=cast(Status, row.status),
        last_run_at=row.last_run_at,
    )


async def unassign(ctx: Context, input: UnassignInput) -> Unassigned:
    session = ctx.session
    deleted = await session.exec(
        delete(AssignmentRow).where(
            col(AssignmentRow.check_id) == input.id,
            col(AssignmentRow.system_id) == input.system_id,
        )
    )
    if deleted.rowcount != 1:
        raise NotFound(f"Health check {input.id} is not assigned to system {input.system_id}")
    await reevaluate_systems(ctx, [input.system_id])
    await ctx.emit(CHECK_CHANGED, {"checkId": input.id})
    return Unassigned(check_id=input.id, system_id=input.system_id)


async def forget_system(ctx: Context, system_id: str) -> None:
    """A catalog system was deleted: its assignments, runs, aggregates and health go
    (idempotent)."""
    session = ctx.session
    for table in (AssignmentRow, RunRow, HourlyRow, DailyRow, SystemRow, StatusChangeRow):
        await session.exec(delete(table).where(col(table.system_id) == system_id))
