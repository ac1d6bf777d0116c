"""Claiming due runs for the scheduler: each slot runs in exactly one process; and when the next
one falls due."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import AssignmentRow, CheckRow
from .common import now_ms

# -- claiming due runs (the scheduler) -------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    return bind.dialect.name if bind is not None else "sqlite"


@dataclass(slots=True)
class Due:
    """A claimed run: what to run and for which system."""

    check_id: str
    system_id: str
    scheduled_ms: int
    name: str
    strategy_id: str
    config: str
    timeout_seconds: float


async def claim_due(session: AsyncSession, limit: int) -> list[Due]:
    """Claim up to ``limit`` due runs: move each one's ``next_run_ms`` to its next slot in one
    conditional ``UPDATE`` (skipping rows another process holds, on PostgreSQL), so every slot
    runs in exactly one process; an overdue assignment runs once and continues one interval from
    now."""
    now = now_ms()
    assignment = AssignmentRow.__table__  # type: ignore[attr-defined]
    candidates = (
        sa_select(assignment.c.id)
        .where(assignment.c.next_run_ms <= now)
        .order_by(assignment.c.next_run_ms)
        .limit(limit)
    )
    if _dialect(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    following = assignment.c.next_run_ms + assignment.c.interval_ms
    statement = (
        sa_update(assignment)
        .where(assignment.c.id.in_(candidates.scalar_subquery()), assignment.c.next_run_ms <= now)
        .values(
            next_run_ms=case((following > now, following), else_=now + assignment.c.interval_ms)
        )
        .returning(
            assignment.c.check_id,
            assignment.c.system_id,
            assignment.c.next_run_ms,
            assignment.c.interval_ms,
        )
    )
    connection = await session.connection()
    claimed = list(await connection.execute(statement))
    if not claimed:
        return []
    checks = {
        row.id: row
        for row in await connection.execute(
            sa_select(
                col(CheckRow.id),
                col(CheckRow.name),
                col(CheckRow.strategy_id),
                col(CheckRow.config),
                col(CheckRow.timeout_seconds),
                col(CheckRow.paused),
            ).where(col(CheckRow.id).in_({c.check_id for c in claimed}))
        )
    }
    out = []
    for c in claimed:
        check = checks.get(c.check_id)
        if check is None or check.paused:
            continue
        out.append(
            Due(
                check_id=c.check_id,
                system_id=c.system_id,
                scheduled_ms=max(c.next_run_ms - c.interval_ms, 0),
                name=check.name,
                strategy_id=check.strategy_id,
                config=check.config,
                timeout_seconds=check.timeout_seconds,
            )
        )
    return out


_NEXT_DUE = sa_select(func.min(col(AssignmentRow.next_run_ms)))


async def next_due_ms(session: AsyncSession) -> int | None:
    """When the next slot of any assignment falls due (epoch ms), if any is scheduled."""
    connection = await session.connection()
    value = (await connection.execute(_NEXT_DUE)).scalar()
    return int(value) if value is not None else None
