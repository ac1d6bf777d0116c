"""Recording runs: the runs themselves, their hourly and daily aggregates (with the latency
histogram), each assignment's streaks and status under its thresholds, and the systems' health
that follows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from sqlalchemy import bindparam, insert
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import col

from checkstack_core import Context
from checkstack_core.db import conflict_insert

from ..contract import ConsecutiveThresholds, WindowThresholds
from ..models import AssignmentRow, DailyRow, HourlyRow, RunRow
from ..strategy import CheckResult
from .common import MAX_MESSAGE, MAX_RESULT_BYTES, _hour, _thresholds
from .health import reevaluate_systems


@dataclass(slots=True)
class Outcome:
    """One finished run, waiting to be recorded."""

    check_id: str
    system_id: str | None
    started_at: datetime
    result: CheckResult
    #: Set by :func:`record_runs`.
    run_id: int | None = None
    result_json: str | None = field(default=None)


def _result_json(data: dict[str, Any]) -> str | None:
    if not data:
        return None
    try:
        encoded = msgspec.json.encode(data)
    except (TypeError, msgspec.EncodeError, ValueError, OverflowError):
        return msgspec.json.encode({"error": "result is not JSON"}).decode()
    if len(encoded) > MAX_RESULT_BYTES:
        return msgspec.json.encode({"error": "result too large", "bytes": len(encoded)}).decode()
    return encoded.decode()


# Latency histogram buckets: bucket k holds latencies in [1.05**(k-1), 1.05**k) ms.
_GROWTH = math.log(1.05)


def _bucket(latency_ms: float) -> int:
    return 0 if latency_ms < 1 else int(math.log(latency_ms) / _GROWTH) + 1


def _percentile(histogram: dict[str, int], fraction: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank = math.ceil(total * fraction)
    seen = 0
    for key in sorted(histogram, key=int):
        seen += histogram[key]
        if seen >= rank:
            k = int(key)
            return 1.0 if k == 0 else round(1.05**k, 1)
    return None


_ASSIGNMENT_STATE = AssignmentRow.__table__  # type: ignore[attr-defined]
_HOURLY = HourlyRow.__table__  # type: ignore[attr-defined]
_UPDATE_ASSIGNMENT = (
    sa_update(_ASSIGNMENT_STATE)
    .where(_ASSIGNMENT_STATE.c.id == bindparam("_id"))
    .values(
        status=bindparam("status"),
        healthy_streak=bindparam("healthy_streak"),
        failure_streak=bindparam("failure_streak"),
        unhealthy_streak=bindparam("unhealthy_streak"),
        last_run_at=bindparam("last_run_at"),
        last_status=bindparam("last_status"),
        last_latency_ms=bindparam("last_latency_ms"),
    )
)
_UPDATE_HOURLY = (
    sa_update(_HOURLY)
    .where(
        _HOURLY.c.check_id == bindparam("_check_id"),
        _HOURLY.c.system_id == bindparam("_system_id"),
        _HOURLY.c.bucket_start == bindparam("_bucket_start"),
    )
    .values(
        runs=bindparam("runs"),
        healthy=bindparam("healthy"),
        degraded=bindparam("degraded"),
        unhealthy=bindparam("unhealthy"),
        latency_sum=bindparam("latency_sum"),
        latency_count=bindparam("latency_count"),
        p95_latency_ms=bindparam("p95_latency_ms"),
        histogram=bindparam("histogram"),
    )
)
_STATE_COLUMNS = (
    _ASSIGNMENT_STATE.c.id,
    _ASSIGNMENT_STATE.c.check_id,
    _ASSIGNMENT_STATE.c.system_id,
    _ASSIGNMENT_STATE.c.thresholds,
    _ASSIGNMENT_STATE.c.status,
    _ASSIGNMENT_STATE.c.healthy_streak,
    _ASSIGNMENT_STATE.c.failure_streak,
    _ASSIGNMENT_STATE.c.unhealthy_streak,
)


async def record_runs(ctx: Context, outcomes: Sequence[Outcome]) -> None:
    """Store runs and everything that follows from them, in ``ctx``'s transaction: the runs,
    their hourly aggregates, each assignment's streaks and status, and each affected system's
    health (with its event and recorded change, once per change).

    A batch costs a fixed number of statements whatever its size (Core executemany, no ORM
    objects): the scheduler's writer records hundreds of runs per transaction.
    """
    if not outcomes:
        return
    session = ctx.session
    if session.new or session.dirty or session.deleted:
        await session.flush()
    for outcome in outcomes:
        outcome.result_json = _result_json(outcome.result.data)
    connection = await session.connection()
    postgres = connection.dialect.name == "postgresql"

    # 1. The assignments' state, locked in a fixed order (it changes below).
    pairs = {(o.check_id, o.system_id) for o in outcomes if o.system_id is not None}
    states: dict[tuple[str, str], dict[str, Any]] = {}
    if pairs:
        query = (
            sa_select(*_STATE_COLUMNS)
            .where(_ASSIGNMENT_STATE.c.check_id.in_(sorted({p[0] for p in pairs})))
            .order_by(_ASSIGNMENT_STATE.c.id)
        )
        if postgres:
            query = query.with_for_update()
        for row in await connection.execute(query):
            key = (row.check_id, row.system_id)
            if key in pairs:
                states[key] = {**row._mapping, "stored_status": row.status}

    # 2. Window thresholds need the statuses of the latest runs before these.
    windows: dict[tuple[str, str], list[str]] = {}
    for key, state in states.items():
        thresholds = _thresholds(state["thresholds"])
        state["parsed"] = thresholds
        if isinstance(thresholds, WindowThresholds):
            latest = await connection.execute(
                sa_select(col(RunRow.status))
                .where(col(RunRow.check_id) == key[0], col(RunRow.system_id) == key[1])
                .order_by(col(RunRow.id).desc())
                .limit(thresholds.window_size)
            )
            windows[key] = [r[0] for r in latest][::-1]

    # 3. The runs; a scheduled run whose assignment went meanwhile (unassigned, system or check
    # deleted) is dropped: unassigning stops a check at once, even mid-run.
    outcomes = [o for o in outcomes if o.system_id is None or (o.check_id, o.system_id) in states]
    if not outcomes:
        return
    inserted = await connection.execute(
        insert(RunRow).returning(col(RunRow.id), sort_by_parameter_order=True),
        [
            {
                "check_id": o.check_id,
                "system_id": o.system_id,
                "status": o.result.status,
                "latency_ms": o.result.latency_ms,
                "message": (o.result.message or "")[:MAX_MESSAGE],
                "result": o.result_json,
                "started_at": o.started_at,
            }
            for o in outcomes
        ],
    )
    for outcome, (run_id,) in zip(outcomes, inserted, strict=True):
        outcome.run_id = run_id

    # 4. Hourly and daily aggregates (only runs of an assigned system count).
    assigned = [o for o in outcomes if (o.check_id, o.system_id) in states]
    await _aggregate(connection, assigned)
    await _aggregate_daily(connection, assigned)

    # 5. Each assignment's streaks and status.
    changed: dict[tuple[str, str], dict[str, Any]] = {}
    moved: set[str] = set()  # systems one of whose checks changed status
    for outcome in outcomes:
        if outcome.system_id is None:
            continue  # a run of an unassigned check (runNow) moves no system
        pair = (outcome.check_id, outcome.system_id)
        found = states.get(pair)
        if found is None:
            continue
        state = found
        status = outcome.result.status
        if status == "healthy":
            state["healthy_streak"] += 1
            state["failure_streak"] = 0
            state["unhealthy_streak"] = 0
        else:
            state["healthy_streak"] = 0
            state["failure_streak"] += 1
            state["unhealthy_streak"] = (
                state["unhealthy_streak"] + 1 if status == "unhealthy" else 0
            )
        thresholds = state["parsed"]
        if isinstance(thresholds, WindowThresholds):
            window = [*windows.get(pair, []), status][-thresholds.window_size :]
            windows[pair] = window
            state["status"] = _window_status(thresholds, window)
        else:
            state["status"] = _consecutive_status(thresholds, state, state["status"])
        state["last_run_at"] = outcome.started_at
        state["last_status"] = status
        state["last_latency_ms"] = outcome.result.latency_ms
        if state["status"] != state["stored_status"]:
            moved.add(pair[1])
        changed[pair] = state
    if changed:
        await connection.execute(
            _UPDATE_ASSIGNMENT,
            [
                {
                    "_id": state["id"],
                    "status": state["status"],
                    "healthy_streak": state["healthy_streak"],
                    "failure_streak": state["failure_streak"],
                    "unhealthy_streak": state["unhealthy_streak"],
                    "last_run_at": state["last_run_at"],
                    "last_status": state["last_status"],
                    "last_latency_ms": state["last_latency_ms"],
                }
                for state in changed.values()
            ],
        )

    # 6. The systems' health: it can only change where a check's status did.
    await reevaluate_systems(ctx, moved)


def _consecutive_status(
    thresholds: ConsecutiveThresholds, state: dict[str, Any], previous: str
) -> str:
    if state["unhealthy_streak"] >= thresholds.unhealthy_after:
        return "unhealthy"
    if state["failure_streak"] >= thresholds.degraded_after:
        return "degraded"
    if state["healthy_streak"] >= thresholds.healthy_after:
        return "healthy"
    return previous


def _window_status(thresholds: WindowThresholds, window: list[str]) -> str:
    unhealthy = sum(1 for s in window if s == "unhealthy")
    failed = sum(1 for s in window if s != "healthy")
    if unhealthy >= thresholds.unhealthy_at:
        return "unhealthy"
    if failed >= thresholds.degraded_at:
        return "degraded"
    return "healthy"


_HOURLY_COLUMNS = tuple(_HOURLY.c)
_EMPTY_HOURLY: dict[str, Any] = {
    "runs": 0,
    "healthy": 0,
    "degraded": 0,
    "unhealthy": 0,
    "latency_sum": 0.0,
    "latency_count": 0,
    "p95_latency_ms": None,
    "histogram": "{}",
}


async def _aggregate(connection: Any, outcomes: Sequence[Outcome]) -> None:
    """Fold runs into their hourly rows: one read of every row the batch touches (locked on
    PostgreSQL), then one executemany insert of the new rows and one of the updates."""
    groups: dict[tuple[str, str, datetime], list[Outcome]] = {}
    for outcome in outcomes:
        assert outcome.system_id is not None
        key = (outcome.check_id, outcome.system_id, _hour(outcome.started_at))
        groups.setdefault(key, []).append(outcome)
    if not groups:
        return
    # Every row the batch touches exists first (created empty, concurrent creators both fine),
    # then is read (locked on PostgreSQL) and written back: no lost update, no duplicate key.
    await connection.execute(
        conflict_insert(connection.dialect.name, _HOURLY).on_conflict_do_nothing(),
        [
            {**_EMPTY_HOURLY, "check_id": k[0], "system_id": k[1], "bucket_start": k[2]}
            for k in groups
        ],
    )
    query = (
        sa_select(*_HOURLY_COLUMNS)
        .where(
            _HOURLY.c.check_id.in_(sorted({k[0] for k in groups})),
            _HOURLY.c.bucket_start.in_(sorted({k[2] for k in groups})),
        )
        .order_by(_HOURLY.c.check_id, _HOURLY.c.system_id, _HOURLY.c.bucket_start)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    existing: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    for row in await connection.execute(query):
        key = (row.check_id, row.system_id, _hour(row.bucket_start))
        if key in groups:
            existing[key] = dict(row._mapping)
    updates: list[dict[str, Any]] = []
    for key in sorted(groups):
        check_id, system_id, _bucket_start = key
        row = existing[key]
        histogram: dict[str, int] = msgspec.json.decode(row["histogram"] or "{}")
        for outcome in groups[key]:
            result = outcome.result
            row["runs"] += 1
            row[result.status] += 1
            if result.latency_ms is not None:
                row["latency_sum"] += result.latency_ms
                row["latency_count"] += 1
                bucket_key = str(_bucket(result.latency_ms))
                histogram[bucket_key] = histogram.get(bucket_key, 0) + 1
        row["histogram"] = msgspec.json.encode(histogram).decode()
        row["p95_latency_ms"] = _percentile(histogram, 0.95)
        updates.append(
            {
                "_check_id": check_id,
                "_system_id": system_id,
                "_bucket_start": row["bucket_start"],
                **{
                    k: v
                    for k, v in row.items()
                    if k not in ("check_id", "system_id", "bucket_start")
                },
            }
        )
    await connection.execute(_UPDATE_HOURLY, updates)


_DAILY = DailyRow.__table__  # type: ignore[attr-defined]
_DAILY_KEY = (_DAILY.c.system_id, _DAILY.c.day, _DAILY.c.check_id)


async def _aggregate_daily(connection: Any, outcomes: Sequence[Outcome]) -> None:
    """Count runs into their daily rows with one executemany upsert that adds to the stored
    counts (atomic on both databases; rows in key order, after the hourly rows, so concurrent
    writers lock in one order)."""
    counts: dict[tuple[str, date, str], dict[str, int]] = {}
    for outcome in outcomes:
        assert outcome.system_id is not None
        key = (outcome.system_id, outcome.started_at.astimezone(UTC).date(), outcome.check_id)
        row = counts.setdefault(key, {"runs": 0, "healthy": 0, "degraded": 0, "unhealthy": 0})
        row["runs"] += 1
        row[outcome.result.status] += 1
    if not counts:
        return
    base = conflict_insert(connection.dialect.name, _DAILY)
    statement = base.on_conflict_do_update(
        index_elements=list(_DAILY_KEY),
        set_={
            name: _DAILY.c[name] + base.excluded[name]
            for name in ("runs", "healthy", "degraded", "unhealthy")
        },
    )
    await connection.execute(
        statement,
        [{"system_id": k[0], "day": k[1], "check_id": k[2], **counts[k]} for k in sorted(counts)],
    )
