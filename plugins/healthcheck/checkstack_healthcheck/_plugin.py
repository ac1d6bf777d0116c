"""The healthcheck plugin object: contract, handlers, tables, migrations, the strategy hookspec,
the scheduler's jobs and event handlers (the package's ``plugin``, loaded on first use)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from checkstack_core import Context, Event, JobRun, Plugin, vault
from checkstack_core.db import utcnow

from . import hooks, scheduler, service, strategy
from .contract import CHECK_CHANGED, contract
from .handlers import handlers
from .models import (
    AssignmentRow,
    CheckRow,
    DailyRow,
    HourlyRow,
    RunRow,
    StatusChangeRow,
    SystemRow,
)

RETENTION_JOB = "healthcheck.retention"
RETENTION_KEY = "healthcheck:retention"

plugin = Plugin(
    id="healthcheck",
    name="Health checks",
    description="Health checks on catalog systems, run on a schedule by strategy plugins, with "
    "history, availability and system health.",
    contract=contract,
    handlers=handlers,
    depends_on=["catalog"],
    models=[CheckRow, AssignmentRow, RunRow, HourlyRow, DailyRow, SystemRow, StatusChangeRow],
    migrations=Path(__file__).parent / "migrations",
    hooks=hooks,
    hookspecs=strategy,
)


@plugin.provide(service.RUNTIME)
def runtime(ctx: Context) -> service.Runtime:
    """Strategies from every plugin implementing the hookspec, the secret key and settings."""
    host = ctx.host
    return service.Runtime(
        strategies=service.collect_strategies(host.call_hook("checkstack_healthcheck_strategies")),
        vault=vault.Vault(host.settings.secret_key, service.VAULT_PURPOSE),
        settings=service.Settings.load(host.settings.plugin("healthcheck")),
    )


@plugin.job("retention")
async def retention(ctx: Context, run: JobRun) -> None:
    """Daily: drop raw runs, hourly aggregates and status changes past their retention."""
    removed = await service.apply_retention(ctx)
    ctx.logger.info("healthcheck retention removed %s", removed)


@plugin.on_startup
async def start(ctx: Context) -> None:
    runtime = ctx.service(service.RUNTIME)
    await scheduler.start(ctx, runtime)
    await ctx.jobs.schedule_interval(
        RETENTION_JOB,
        key=RETENTION_KEY,
        every=timedelta(days=1),
        start_at=utcnow() + timedelta(minutes=5),
    )


@plugin.on_shutdown
async def stop(ctx: Context) -> None:
    executor = ctx.service(service.RUNTIME).executor
    if executor is not None:
        await executor.stop()


@plugin.on_event(CHECK_CHANGED)
async def check_changed(ctx: Context, event: Event) -> None:
    """A schedule changed (committed): look for due runs now rather than at the next poll."""
    scheduler.wake(ctx)


@plugin.on_event("catalog.system.deleted", mode="work_queue", group="system-cleanup")
async def forget_system(ctx: Context, event: Event) -> None:
    """Remove a deleted system's assignments, runs, aggregates and health (idempotent)."""
    await service.forget_system(ctx, event.payload["systemId"])
