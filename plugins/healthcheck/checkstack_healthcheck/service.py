"""Domain logic of the healthcheck plugin: checks and their assignments, recording runs (history,
hourly aggregates, thresholds, system health and its events), and the reads.

Every procedure works on the call's session (one connection per call). Runs are recorded by
:func:`record_runs` in whatever transaction is given: ``runNow``'s, or the scheduler's writer
batch (:mod:`.scheduler`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import msgspec
from sqlalchemy import bindparam, case, delete, func, insert, or_
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Forbidden, Level, NotFound, ServiceRef, vault
from checkstack_core.db import core_rows, utcnow
from checkstack_core.dispatch import validation_issues
from checkstack_core.errors import validation_error

from .contract import (
    CHECK_CHANGED,
    DAILY_DAYS,
    DETAILS_READ,
    READ,
    SEVERITY,
    STATUS_READ,
    SYSTEM,
    SYSTEM_EVENTS,
    AssignInput,
    Assignment,
    Availability,
    AvailabilityInput,
    AvailabilityWindow,
    BulkSystemHealth,
    CheckHealth,
    CheckId,
    ConsecutiveThresholds,
    CreateHealthCheckInput,
    DailyAvailability,
    DailyAvailabilityInput,
    DayAvailability,
    Deleted,
    GetHealthChecksInput,
    GetHistoryInput,
    HealthCheck,
    HealthCheckList,
    History,
    HourlyBucket,
    HourlyStats,
    HourlyStatsInput,
    Run,
    RunId,
    RunNowInput,
    Status,
    StatusChange,
    StatusChanges,
    StatusChangesInput,
    StrategyInfo,
    StrategyList,
    SystemHealth,
    SystemIdInput,
    SystemIdsInput,
    Thresholds,
    Unassigned,
    UnassignInput,
    UpdateHealthCheckInput,
    WindowThresholds,
)
from .models import (
    AssignmentRow,
    CheckRow,
    DailyRow,
    HourlyRow,
    RunRow,
    StatusChangeRow,
    SystemRow,
)
from .strategy import CheckResult, Strategy

logger = logging.getLogger("checkstack.plugins.healthcheck")

DEFAULT_THRESHOLDS = ConsecutiveThresholds()
_THRESHOLDS_DECODER = msgspec.json.Decoder(Thresholds)
#: Longest message stored for a run.
MAX_MESSAGE = 1000
#: Largest structured result stored for a run (bytes of JSON); bigger ones are replaced.
MAX_RESULT_BYTES = 64 * 1024


# -- the runtime: strategies, secrets, settings ----------------------------------------------------


@dataclass
class Settings:
    """``[plugins.healthcheck]`` in the config file."""

    #: Look for due runs this often (seconds).
    poll_interval_seconds: float = 0.5
    #: Runs in flight at once per process; a slow target holds one slot until its timeout.
    max_concurrency: int = 200
    #: Runs recorded per write transaction, at most.
    write_batch: int = 500
    #: Raw runs are kept this many days; hourly aggregates and status changes longer.
    raw_retention_days: int = 7
    hourly_retention_days: int = 90
    #: ``false`` stops the scheduler in this process (tests; a process that only serves reads).
    scheduler: bool = True

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Settings:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(
                f"Unknown [plugins.healthcheck] settings: {', '.join(sorted(unknown))}"
            )
        settings = cls(**raw)
        if settings.raw_retention_days < 1 or settings.hourly_retention_days < 1:
            raise ValueError("[plugins.healthcheck] retention days must be at least 1")
        if settings.max_concurrency < 1 or settings.write_batch < 1:
            raise ValueError("[plugins.healthcheck] max_concurrency and write_batch must be >= 1")
        if not 0.01 <= settings.poll_interval_seconds <= 60:
            raise ValueError("[plugins.healthcheck] poll_interval_seconds must be 0.01..60")
        return settings


#: The key purpose of strategy secrets (see :class:`checkstack_core.vault.Vault`); fixed, since
#: stored configs were encrypted under it.
VAULT_PURPOSE = b"checkstack healthcheck secret config fields v1"


@dataclass
class Runtime:
    """What the plugin holds per process (provided as a service at startup)."""

    strategies: dict[str, Strategy[Any]]
    vault: vault.Vault
    settings: Settings
    #: The scheduler of this process (set at startup when enabled).
    executor: Any = None
    #: ``getStrategies``' answer, built once: the strategies are fixed at startup, and building
    #: their JSON schemas on every call held the answer to about 430 a second under load.
    strategy_list: StrategyList | None = None


RUNTIME = ServiceRef[Runtime]("healthcheck.runtime")


def collect_strategies(results: Iterable[Any]) -> dict[str, Strategy[Any]]:
    """The strategies the plugins returned from ``checkstack_healthcheck_strategies``, by id
    (the first of two with one id wins; the other is logged)."""
    found: dict[str, Strategy[Any]] = {}
    for provided in results:
        for strategy in provided or ():
            if not isinstance(strategy, Strategy):
                logger.error(
                    "Ignoring a health check strategy that is not a Strategy: %r", strategy
                )
                continue
            if strategy.id in found:
                logger.error("Ignoring a second health check strategy with id %r", strategy.id)
                continue
            found[strategy.id] = strategy
    return found


def runtime(ctx: Context) -> Runtime:
    return ctx.service(RUNTIME)


# -- helpers ---------------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _thresholds(raw: str | None) -> Thresholds:
    return DEFAULT_THRESHOLDS if raw is None else _THRESHOLDS_DECODER.decode(raw)


def _worst(statuses: Iterable[str]) -> Status:
    worst = "healthy"
    for status in statuses:
        if SEVERITY[status] > SEVERITY[worst]:
            worst = status
    return cast(Status, worst)


def _check_not_found(check_id: str) -> NotFound:
    return NotFound(f"Health check not found: {check_id}")


async def _readable(ctx: Context, ids: Iterable[str], rule: str) -> set[str]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return set()
    return await ctx.admitted_ids(SYSTEM, ids, Level.READ, rule_id=rule)


# -- config validation and secrets -----------------------------------------------------------------


def strategy_of(ctx: Context, strategy_id: str) -> Strategy[Any]:
    strategy = runtime(ctx).strategies.get(strategy_id)
    if strategy is None:
        raise validation_error(
            [{"message": f"Unknown strategy: {strategy_id}", "path": ["strategyId"]}]
        )
    return strategy


def require_strategy_rules(ctx: Context, strategy_id: str) -> None:
    """FORBIDDEN unless the caller holds every rule the strategy requires on top of the manage
    rule (``Strategy.required_rules``); a strategy that is not installed requires none."""
    strategy = runtime(ctx).strategies.get(strategy_id)
    if strategy is None:
        return
    missing = [rule for rule in strategy.required_rules if not ctx.principal.holds(rule)]
    if missing:
        raise Forbidden(
            f"Checks of strategy {strategy.id!r} need the access rule {', '.join(missing)}"
        )


def parse_config(strategy: Strategy[Any], raw: dict[str, Any]) -> msgspec.Struct:
    """The config as the strategy's type, or BAD_REQUEST naming the path under ``config``."""
    try:
        value = msgspec.convert(raw, strategy.config_type)
    except msgspec.ValidationError as exc:
        issues = validation_issues(exc)
        for issue in issues:
            issue["path"] = ["config", *issue["path"]]
        raise validation_error(issues) from None
    problems = strategy.validate(value)
    if problems:
        raise validation_error(
            [{"message": message, "path": ["config", *path]} for message, path in problems]
        )
    return value


def seal(ctx: Context, strategy: Strategy[Any], config: dict[str, Any]) -> str:
    """The JSON stored for a (validated) config: its secrets encrypted."""
    paths = vault.secret_paths(strategy.config_type)
    keeper = runtime(ctx).vault
    issues: list[dict[str, Any]] = []

    def encrypt(value: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(value, str) or value == "":
            return value
        try:
            return keeper.encrypt(value)
        except vault.NoKey:
            issues.append(
                {
                    "message": "Secret fields cannot be stored: the server has no "
                    "CHECKSTACK_SECRET_KEY",
                    "path": ["config", *path],
                }
            )
            return None

    sealed = vault.transform(config, paths, encrypt)
    if issues:
        raise validation_error(issues)
    return msgspec.json.encode(sealed).decode()


def unseal(keeper: vault.Vault, strategy: Strategy[Any], stored: str) -> msgspec.Struct:
    """The config as the strategy's type, secrets decrypted (for a run)."""
    raw = msgspec.json.decode(stored)
    paths = vault.secret_paths(strategy.config_type)
    if paths:
        raw = vault.transform(raw, paths, lambda value, _p: keeper.decrypt(value))
    return msgspec.convert(raw, strategy.config_type)


def masked(strategies: dict[str, Strategy[Any]], strategy_id: str, stored: str) -> dict[str, Any]:
    """The config as outputs show it: secrets masked (every string of a config whose strategy is
    gone, since nothing says which are secret)."""
    raw = msgspec.json.decode(stored)
    strategy = strategies.get(strategy_id)
    if strategy is None:
        return {key: vault.MASK for key in raw}
    return cast(dict[str, Any], vault.mask(raw, vault.secret_paths(strategy.config_type)))


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


def get_strategies(ctx: Context) -> StrategyList:
    rt = runtime(ctx)
    if rt.strategy_list is None:
        rt.strategy_list = _strategy_list(rt.strategies)
    return rt.strategy_list


def _strategy_list(strategies: dict[str, Strategy[Any]]) -> StrategyList:
    out = []
    for strategy_id in sorted(strategies):
        strategy = strategies[strategy_id]
        (schema,), components = msgspec.json.schema_components([strategy.config_type])
        if components:
            schema = {**schema, "$defs": components}
            ref = schema.get("$ref", "")
            if ref.startswith("#/$defs/") and "properties" not in schema:
                schema = {**components[ref.rsplit("/", 1)[-1]], "$defs": components}
        out.append(
            StrategyInfo(
                id=strategy.id,
                display_name=strategy.display_name,
                description=strategy.description,
                config_schema=cast(dict[str, Any], schema),
            )
        )
    return StrategyList(strategies=out)


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


# -- assignments -----------------------------------------------------------------------------------


async def _require_system(ctx: Context, system_id: str) -> None:
    resolved = await ctx.call("catalog", "resolveSystems", {"ids": [system_id]}, as_service=True)
    if system_id in msgspec.to_builtins(resolved)["missing"]:
        raise NotFound(f"System not found: {system_id}")


def _insert_ignoring_existing(connection: Any, table: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL: two transactions creating
    one row both succeed (no check-then-insert race)."""
    if connection.dialect.name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


async def _ensure_system_row(session: AsyncSession, system_id: str) -> None:
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    table = SystemRow.__table__  # type: ignore[attr-defined]
    await connection.execute(
        _insert_ignoring_existing(connection, table), {"system_id": system_id, "status": "healthy"}
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


# -- running ---------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:g}"


async def probe(strategy: Strategy[Any], config: Any, limit: float) -> CheckResult:
    """Run ``strategy`` once with a hard time ``limit`` (seconds); failures become unhealthy
    results with a clear message (never a traceback)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            result = await strategy.run(config, started + limit)
    except TimeoutError:
        return CheckResult(
            "unhealthy",
            latency_ms=round((time.monotonic() - started) * 1000, 3),
            message=f"Timed out after {_seconds(limit)} s",
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The exception's text may quote the target or a credential: log and store its type.
        logger.warning("Strategy %s failed: %s", strategy.id, type(exc).__name__)
        return CheckResult("unhealthy", message=f"Check failed: {type(exc).__name__}")
    if not isinstance(result, CheckResult) or result.status not in SEVERITY:
        logger.warning("Strategy %s returned an invalid result", strategy.id)
        return CheckResult("unhealthy", message="Check failed: invalid result from the strategy")
    return result


async def execute(rt: Runtime, strategy_id: str, stored: str, limit: float) -> CheckResult:
    """One run of a stored check: its strategy, its config with secrets decrypted, the probe."""
    strategy = rt.strategies.get(strategy_id)
    if strategy is None:
        return CheckResult("unhealthy", message=f"Strategy not installed: {strategy_id}")
    try:
        config = unseal(rt.vault, strategy, stored)
    except (vault.NoKey, msgspec.ValidationError):
        return CheckResult("unhealthy", message="Stored config cannot be read")
    return await probe(strategy, config, limit)


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


def _dialect(session: AsyncSession) -> str:
    bind = session.bind
    return bind.dialect.name if bind is not None else "sqlite"


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
        _insert_ignoring_existing(connection, _HOURLY),
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
    base = (
        postgresql_insert(_DAILY)
        if connection.dialect.name == "postgresql"
        else sqlite_insert(_DAILY)
    )
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


async def run_now(ctx: Context, input: RunNowInput) -> Run:
    """``runNow``: one run now, stored (counting for the system's health when ``systemId`` is
    given) and returned."""
    session = ctx.session
    check = await _load_check(session, input.id)
    require_strategy_rules(ctx, check.strategy_id)
    if input.system_id is not None:
        found = await core_rows(
            session,
            sa_select(col(AssignmentRow.id)).where(
                col(AssignmentRow.check_id) == check.id,
                col(AssignmentRow.system_id) == input.system_id,
            ),
        )
        if not found:
            raise NotFound(f"Health check {check.id} is not assigned to system {input.system_id}")
    started = utcnow()
    result = await execute(runtime(ctx), check.strategy_id, check.config, check.timeout_seconds)
    outcome = Outcome(check.id, input.system_id, started, result)
    await record_runs(ctx, [outcome])
    assert outcome.run_id is not None
    return Run(
        id=outcome.run_id,
        check_id=check.id,
        system_id=input.system_id,
        status=result.status,
        latency_ms=result.latency_ms,
        message=(result.message or "")[:MAX_MESSAGE],
        timestamp=started,
        result=(msgspec.json.decode(outcome.result_json) if outcome.result_json else None)
        if ctx.principal.holds(DETAILS_READ)
        else msgspec.UNSET,
    )


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


# -- claiming due runs (the scheduler) -------------------------------------------------------------


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
