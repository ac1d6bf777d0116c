"""Health checks: their outputs (with the assignments the caller may see), listing, creating,
updating, pausing and deleting, and keeping their assignments' schedule in step."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

import msgspec
from sqlalchemy import bindparam, delete
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, vault
from checkstack_core.db import core_rows, utcnow
from checkstack_core.errors import validation_error

from ..contract import (
    CHECK_CHANGED,
    READ,
    Assignment,
    CheckId,
    CreateHealthCheckInput,
    Deleted,
    GetHealthChecksInput,
    HealthCheck,
    HealthCheckList,
    UpdateHealthCheckInput,
)
from ..models import AssignmentRow, CheckRow, DailyRow, HourlyRow, RunRow
from .common import _check_not_found, _ms, _readable, _thresholds, now_ms
from .configs import masked, parse_config, require_strategy_rules, seal, strategy_of
from .health import reevaluate_systems
from .settings import runtime

# -- outputs ---------------------------------------------------------------------------------------

_CHECK_COLUMNS: tuple[Any, ...] = (
    col(CheckRow.id),
    col(CheckRow.name),
    col(CheckRow.strategy_id),
    col(CheckRow.config),
    col(CheckRow.interval_seconds),
    col(CheckRow.timeout_seconds),
    col(CheckRow.paused),
    col(CheckRow.created_at),
    col(CheckRow.updated_at),
)
_ASSIGNMENT_COLUMNS: tuple[Any, ...] = (
    col(AssignmentRow.check_id),
    col(AssignmentRow.system_id),
    col(AssignmentRow.enabled),
    col(AssignmentRow.thresholds),
    col(AssignmentRow.status),
    col(AssignmentRow.last_run_at),
)
_ALL_CHECKS = sa_select(*_CHECK_COLUMNS).order_by(col(CheckRow.name), col(CheckRow.id))
_ASSIGNMENTS_OF = (
    sa_select(*_ASSIGNMENT_COLUMNS)
    .where(col(AssignmentRow.check_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(AssignmentRow.system_id))
)


def _assignment(row: Any) -> Assignment:
    return Assignment(
        check_id=row.check_id,
        system_id=row.system_id,
        enabled=row.enabled,
        thresholds=_thresholds(row.thresholds),
        status=row.status,
        last_run_at=row.last_run_at,
    )


async def _checks_out(ctx: Context, rows: Sequence[Any]) -> list[HealthCheck]:
    """Health checks from rows of ``_CHECK_COLUMNS``, with the assignments the caller may see."""
    if not rows:
        return []
    connection = await ctx.session.connection()
    assigned = list(await connection.execute(_ASSIGNMENTS_OF, {"ids": [r.id for r in rows]}))
    admitted = await _readable(ctx, (a.system_id for a in assigned), READ)
    by_check: dict[str, list[Assignment]] = {r.id: [] for r in rows}
    for a in assigned:
        if a.system_id in admitted:
            by_check[a.check_id].append(_assignment(a))
    strategies = runtime(ctx).strategies
    return [
        HealthCheck(
            id=r.id,
            name=r.name,
            strategy_id=r.strategy_id,
            config=masked(strategies, r.strategy_id, r.config),
            interval_seconds=r.interval_seconds,
            timeout_seconds=r.timeout_seconds,
            paused=r.paused,
            assignments=by_check[r.id],
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


async def _check_out(ctx: Context, check_id: str) -> HealthCheck:
    rows = await core_rows(
        ctx.session, sa_select(*_CHECK_COLUMNS).where(col(CheckRow.id) == check_id)
    )
    if not rows:
        raise _check_not_found(check_id)
    return (await _checks_out(ctx, rows))[0]


# -- strategies and checks -------------------------------------------------------------------------


async def list_checks(ctx: Context, input: GetHealthChecksInput) -> HealthCheckList:
    statement = _ALL_CHECKS
    if input.system_id is not None:
        statement = statement.where(
            col(CheckRow.id).in_(
                sa_select(col(AssignmentRow.check_id)).where(
                    col(AssignmentRow.system_id) == input.system_id
                )
            )
        )
        if input.system_id not in await _readable(ctx, [input.system_id], READ):
            return HealthCheckList(health_checks=[])
    rows = await core_rows(ctx.session, statement)
    return HealthCheckList(health_checks=await _checks_out(ctx, rows))


async def get_check(ctx: Context, input: CheckId) -> HealthCheck:
    return await _check_out(ctx, input.id)


async def _load_check(session: AsyncSession, check_id: str) -> CheckRow:
    row = await session.get(CheckRow, check_id)
    if row is None:
        raise _check_not_found(check_id)
    return row


def _blank(issues: list[dict[str, Any]], value: Any, path: str) -> None:
    if isinstance(value, str) and not value.strip():
        issues.append({"message": f"{path} must not be blank", "path": [path]})


async def create_check(ctx: Context, input: CreateHealthCheckInput) -> HealthCheck:
    issues: list[dict[str, Any]] = []
    _blank(issues, input.name, "name")
    if issues:
        raise validation_error(issues)
    strategy = strategy_of(ctx, input.strategy_id)
    require_strategy_rules(ctx, strategy.id)
    parse_config(strategy, input.config)
    now = utcnow()
    row = CheckRow(
        id=str(uuid.uuid4()),
        name=input.name.strip(),
        strategy_id=strategy.id,
        config=seal(ctx, strategy, input.config),
        interval_seconds=input.interval_seconds,
        timeout_seconds=input.timeout_seconds,
        paused=input.paused,
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    return await _check_out(ctx, row.id)


async def _reschedule(session: AsyncSession, check: CheckRow) -> None:
    """Make the check's assignments' schedule match it: paused → not scheduled; otherwise the
    next run is one (new) interval after the last, or now when that has passed."""
    now = now_ms()
    interval = check.interval_seconds * 1000
    assignments = col(AssignmentRow.check_id) == check.id
    if check.paused:
        await session.exec(
            sa_update(AssignmentRow)
            .where(assignments)
            .values(next_run_ms=None, interval_ms=interval)
        )
        return
    rows = await core_rows(
        session,
        sa_select(
            col(AssignmentRow.id), col(AssignmentRow.last_run_at), col(AssignmentRow.enabled)
        ).where(assignments),
    )
    for assignment_id, last_run_at, enabled in rows:
        due = now if last_run_at is None else max(now, _ms(last_run_at) + interval)
        await session.exec(
            sa_update(AssignmentRow)
            .where(col(AssignmentRow.id) == assignment_id)
            .values(next_run_ms=due if enabled else None, interval_ms=interval)
        )


async def _systems_of_check(session: AsyncSession, check_id: str) -> list[str]:
    rows = await core_rows(
        session,
        sa_select(col(AssignmentRow.system_id)).where(col(AssignmentRow.check_id) == check_id),
    )
    return [r[0] for r in rows]


async def update_check(ctx: Context, input: UpdateHealthCheckInput) -> HealthCheck:
    session = ctx.session
    issues: list[dict[str, Any]] = []
    _blank(issues, input.name, "name")
    if issues:
        raise validation_error(issues)
    row = await _load_check(session, input.id)
    require_strategy_rules(ctx, row.strategy_id)
    unset = msgspec.UNSET
    values: dict[str, Any] = {}
    if input.name is not unset:
        values["name"] = cast(str, input.name).strip()
    if input.config is not unset:
        strategy = strategy_of(ctx, row.strategy_id)
        paths = vault.secret_paths(strategy.config_type)
        new = vault.merge_masks(input.config, msgspec.json.decode(row.config), paths)
        # Validate what the caller meant: a kept secret validates as its mask would.
        parse_config(strategy, vault.mask(new, paths) if paths else new)
        values["config"] = seal(ctx, strategy, new)
    if input.interval_seconds is not unset:
        values["interval_seconds"] = input.interval_seconds
    if input.timeout_seconds is not unset:
        values["timeout_seconds"] = input.timeout_seconds
    if values:
        values["updated_at"] = utcnow()
        for name, value in values.items():
            setattr(row, name, value)
        await session.flush()
        if "interval_seconds" in values:
            await _reschedule(session, row)
        await ctx.emit(CHECK_CHANGED, {"checkId": row.id})
    return await _check_out(ctx, row.id)


async def set_paused(ctx: Context, input: CheckId, paused: bool) -> HealthCheck:
    session = ctx.session
    row = await _load_check(session, input.id)
    if row.paused != paused:
        row.paused = paused
        row.updated_at = utcnow()
        await session.flush()
        await _reschedule(session, row)
        await reevaluate_systems(ctx, await _systems_of_check(session, row.id))
        await ctx.emit(CHECK_CHANGED, {"checkId": row.id})
    return await _check_out(ctx, row.id)


async def delete_check(ctx: Context, input: CheckId) -> Deleted:
    session = ctx.session
    systems = await _systems_of_check(session, input.id)
    for table in (AssignmentRow, RunRow, HourlyRow, DailyRow):
        await session.exec(delete(table).where(col(table.check_id) == input.id))
    deleted = await session.exec(delete(CheckRow).where(col(CheckRow.id) == input.id))
    if deleted.rowcount != 1:
        raise _check_not_found(input.id)
    await reevaluate_systems(ctx, systems)
    await ctx.emit(CHECK_CHANGED, {"checkId": input.id})
    return Deleted(id=input.id)
