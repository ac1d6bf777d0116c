"""Run history reads: ``getHistory`` (filtered, keyset-paginated) and ``getRun``."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col

from checkstack_core import Context, NotFound
from checkstack_core.db import core_rows
from checkstack_core.errors import validation_error

from ..contract import DETAILS_READ, READ, STATUS_READ, GetHistoryInput, History, Run, RunId
from ..models import RunRow, SystemRow
from .common import _readable

# -- history ---------------------------------------------------------------------------------------

_RUN_COLUMNS: tuple[Any, ...] = (
    col(RunRow.id),
    col(RunRow.check_id),
    col(RunRow.system_id),
    col(RunRow.status),
    col(RunRow.latency_ms),
    col(RunRow.message),
    col(RunRow.started_at),
)
_KNOWN_SYSTEMS = sa_select(col(SystemRow.system_id))


def _parse_cursor(cursor: str) -> int:
    try:
        value = int(cursor)
    except ValueError:
        value = -1
    if value < 0 or value > 2**62:
        raise validation_error([{"message": "Invalid cursor", "path": ["cursor"]}])
    return value


async def history(ctx: Context, input: GetHistoryInput) -> History:
    """``getHistory``: runs of readable systems (and test runs for configuration readers),
    filtered, keyset-paginated on the run id (insertion order), with the total."""
    if input.from_ is not None and input.to is not None and input.to <= input.from_:
        raise validation_error([{"message": "to must be after from", "path": ["to"]}])
    session = ctx.session
    conditions: list[Any] = []
    if input.system_id is not None:
        conditions.append(col(RunRow.system_id) == input.system_id)
        candidates = [input.system_id]
    else:
        candidates = [r[0] for r in await core_rows(session, _KNOWN_SYSTEMS)]
    if input.check_id is not None:
        conditions.append(col(RunRow.check_id) == input.check_id)
    if input.status is not None:
        statuses = [input.status] if isinstance(input.status, str) else input.status
        conditions.append(col(RunRow.status).in_(statuses))
    if input.from_ is not None:
        conditions.append(col(RunRow.started_at) >= input.from_)
    if input.to is not None:
        conditions.append(col(RunRow.started_at) < input.to)
    admitted = await _readable(ctx, candidates, STATUS_READ)
    sees_test_runs = input.system_id is None and ctx.principal.holds(READ)
    if ctx.principal.holds(STATUS_READ) and len(admitted) == len(set(candidates)):
        visible: Any = col(RunRow.system_id).is_not(None)
    else:
        visible = col(RunRow.system_id).in_(sorted(admitted))
    if sees_test_runs:
        visible = or_(visible, col(RunRow.system_id).is_(None))
    conditions.append(visible)
    page = list(conditions)
    total: int | None = None
    if input.cursor is not None:
        # A later page's rows are fewer than the total: that one is counted on its own.
        total = (
            await core_rows(session, sa_select(func.count()).select_from(RunRow).where(*conditions))
        )[0][0]
        after = _parse_cursor(input.cursor)
        page.append(col(RunRow.id) < after if input.order == "desc" else col(RunRow.id) > after)
    order = col(RunRow.id).desc() if input.order == "desc" else col(RunRow.id).asc()
    details = ctx.principal.holds(DETAILS_READ)
    columns = (*_RUN_COLUMNS, col(RunRow.result)) if details else _RUN_COLUMNS
    # The first page carries the total in each row (a window count over the filtered runs),
    # one round trip instead of two.
    counted = (*columns, func.count().over().label("total")) if total is None else columns
    rows = await core_rows(
        session, sa_select(*counted).where(*page).order_by(order).limit(input.limit + 1)
    )
    if total is None:
        total = rows[0].total if rows else 0
    more = len(rows) > input.limit
    rows = rows[: input.limit]
    runs = [_run_out(r, details) for r in rows]
    return History(runs=runs, total=total, next_cursor=str(rows[-1].id) if more else None)


def _run_out(row: Any, details: bool) -> Run:
    return Run(
        id=row.id,
        check_id=row.check_id,
        system_id=row.system_id,
        status=row.status,
        latency_ms=row.latency_ms,
        message=row.message,
        timestamp=row.started_at,
        result=(msgspec.json.decode(row.result) if row.result else None)
        if details
        else msgspec.UNSET,
    )


async def get_run(ctx: Context, input: RunId) -> Run:
    rows = await core_rows(
        ctx.session,
        sa_select(*_RUN_COLUMNS, col(RunRow.result)).where(col(RunRow.id) == input.id),
    )
    not_found = NotFound(f"Run not found: {input.id}")
    if not rows:
        raise not_found
    row = rows[0]
    if row.system_id is None:
        if not ctx.principal.holds(READ) and ctx.principal.kind != "service":
            raise not_found
    elif row.system_id not in await _readable(ctx, [row.system_id], DETAILS_READ):
        raise not_found
    return _run_out(row, True)
