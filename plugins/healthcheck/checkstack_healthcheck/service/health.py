"""System health: recomputing a system's health from its checks (recording and announcing each
change), and reading it."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from checkstack_core import Context
from checkstack_core.db import utcnow

from ..contract import (
    STATUS_READ,
    SYSTEM_EVENTS,
    BulkSystemHealth,
    CheckHealth,
    SystemHealth,
    SystemIdInput,
    SystemIdsInput,
)
from ..models import AssignmentRow, CheckRow, StatusChangeRow, SystemRow
from .common import _readable, _worst, logger

# -- system health ---------------------------------------------------------------------------------


async def _suppressed(ctx: Context, system_id: str) -> bool:
    """Whether a suppressing maintenance (in progress) or incident (open) covers the system,
    asked on this call's connection; a plugin that is not loaded suppresses nothing."""
    for plugin_id in ("maintenance", "incident"):
        record = ctx.host.plugins.get(plugin_id)
        if record is None or record.status != "active":
            continue
        try:
            answer = await ctx.call(
                plugin_id, "isSuppressed", {"systemId": system_id}, as_service=True
            )
        except Exception:
            logger.warning("Asking %s whether %s is suppressed failed", plugin_id, system_id)
            continue
        if msgspec.to_builtins(answer).get("suppressed"):
            return True
    return False


_SYSTEM_CHECKS = (
    sa_select(
        col(AssignmentRow.system_id),
        col(AssignmentRow.status),
        func.count(),
    )
    .join(CheckRow, col(CheckRow.id) == col(AssignmentRow.check_id))
    .where(
        col(AssignmentRow.system_id).in_(bindparam("ids", expanding=True)),
        col(AssignmentRow.enabled).is_(True),
        col(CheckRow.paused).is_(False),
    )
    .group_by(col(AssignmentRow.system_id), col(AssignmentRow.status))
)


async def reevaluate_systems(ctx: Context, system_ids: Iterable[str]) -> None:
    """Recompute each system's health (the worst of its enabled, running checks); on a change,
    record it and emit ``healthcheck.system.<status>`` once."""
    ids = sorted(set(system_ids))
    if not ids:
        return
    session = ctx.session
    # Lock the systems' rows first (fixed order): two transactions recording runs of one system
    # evaluate one after the other, each seeing the other's committed check statuses.
    systems = {
        row.system_id: row
        for row in (
            await session.exec(
                select(SystemRow)
                .where(col(SystemRow.system_id).in_(ids))
                .order_by(col(SystemRow.system_id))
                .with_for_update()
            )
        )
    }
    connection = await session.connection()
    per_system: dict[str, dict[str, int]] = {system_id: {} for system_id in ids}
    for system_id, status, count in await connection.execute(_SYSTEM_CHECKS, {"ids": ids}):
        per_system[system_id][status] = count
    now = utcnow()
    for system_id in ids:
        row = systems.get(system_id)
        if row is None:
            continue  # a deleted system
        new = _worst(per_system[system_id])
        previous = row.status
        if new == previous:
            continue
        row.status = new
        row.changed_at = now
        suppressed = await _suppressed(ctx, system_id)
        session.add(
            StatusChangeRow(
                system_id=system_id,
                from_status=previous,
                to_status=new,
                suppressed=suppressed,
                at=now,
            )
        )
        statuses = per_system[system_id]
        await ctx.emit(
            SYSTEM_EVENTS[new],
            {
                "systemId": system_id,
                "previousStatus": previous,
                "status": new,
                "suppressed": suppressed,
                "healthyChecks": statuses.get("healthy", 0),
                "totalChecks": sum(statuses.values()),
                "timestamp": now.isoformat(),
            },
        )
    await session.flush()


# -- system health reads ---------------------------------------------------------------------------

_HEALTH_CHECKS = (
    sa_select(
        col(AssignmentRow.system_id),
        col(AssignmentRow.check_id),
        col(CheckRow.name),
        col(AssignmentRow.status),
        col(AssignmentRow.enabled),
        col(CheckRow.paused),
        col(AssignmentRow.last_run_at),
        col(AssignmentRow.last_status),
        col(AssignmentRow.last_latency_ms),
    )
    .join(CheckRow, col(CheckRow.id) == col(AssignmentRow.check_id))
    .where(col(AssignmentRow.system_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(AssignmentRow.system_id), col(CheckRow.name), col(AssignmentRow.check_id))
)
_SYSTEMS = sa_select(
    col(SystemRow.system_id), col(SystemRow.status), col(SystemRow.changed_at)
).where(col(SystemRow.system_id).in_(bindparam("ids", expanding=True)))


async def _health(ctx: Context, ids: list[str]) -> dict[str, SystemHealth]:
    out: dict[str, SystemHealth] = {
        system_id: SystemHealth(system_id=system_id, status="healthy", changed_at=None, checks=[])
        for system_id in ids
    }
    if not ids:
        return out
    connection = await ctx.session.connection()
    for row in await connection.execute(_SYSTEMS, {"ids": ids}):
        out[row.system_id].status = row.status
        out[row.system_id].changed_at = row.changed_at
    for check in await connection.execute(_HEALTH_CHECKS, {"ids": ids}):
        out[check.system_id].checks.append(
            CheckHealth(
                check_id=check.check_id,
                check_name=check.name,
                status=check.status,
                enabled=check.enabled,
                paused=check.paused,
                last_run_at=check.last_run_at,
                last_status=check.last_status,
                last_latency_ms=check.last_latency_ms,
            )
        )
    return out


async def system_health(ctx: Context, input: SystemIdInput) -> SystemHealth:
    return (await _health(ctx, [input.system_id]))[input.system_id]


async def bulk_system_health(ctx: Context, input: SystemIdsInput) -> BulkSystemHealth:
    ids = list(dict.fromkeys(input.system_ids))
    # Filter in the handler too (the dispatcher filters the map again): no work for hidden ones.
    admitted = await _readable(ctx, ids, STATUS_READ)
    return BulkSystemHealth(statuses=await _health(ctx, [i for i in ids if i in admitted]))
