"""The maintenance plugin object: contract, handlers, tables, migrations, jobs and event
handlers (the package's ``plugin``, loaded on first use)."""

from __future__ import annotations

from pathlib import Path

from checkstack_core import Context, Event, JobRun, Plugin
from checkstack_core.db import utcnow

from . import hooks, service
from .contract import (
    MAINTENANCE_STATUS,
    WINDOW_CREATED,
    WINDOW_DELETED,
    WINDOW_STATUS_CHANGED,
    WINDOW_SYSTEMS,
    WINDOW_UPDATED,
    MaintenanceStatus,
    WindowSystems,
    contract,
)
from .handlers import handlers
from .models import TimelineRow, WindowRow, WindowSystemRow

plugin = Plugin(
    id="maintenance",
    name="Maintenance",
    description="Maintenance windows on catalog systems, started and completed on schedule.",
    contract=contract,
    handlers=handlers,
    depends_on=["catalog"],
    models=[WindowRow, WindowSystemRow, TimelineRow],
    migrations=Path(__file__).parent / "migrations",
    hooks=hooks,
)


@plugin.provide(MAINTENANCE_STATUS)
def status_service(ctx: Context) -> MaintenanceStatus:
    return service.WindowStatusService(ctx.host.db)


@plugin.provide(WINDOW_SYSTEMS)
def systems_lookup(ctx: Context) -> WindowSystems:
    return service.SystemsLookup()


@plugin.job("transition", max_retries=3)
async def transition(ctx: Context, run: JobRun) -> None:
    """Start or complete one window when its time has come (retried if the database fails)."""
    await service.run_transition(ctx, run.payload["windowId"])


@plugin.job("sweep")
async def sweep(ctx: Context, run: JobRun) -> None:
    """Safety net: apply overdue transitions whose once-job this process never had."""
    await service.catch_up(ctx, schedule=False)


@plugin.on_startup
async def catch_up(ctx: Context) -> None:
    """The embedded job scheduler forgets everything on restart: apply what fell due while the
    server was down and schedule what is still ahead."""
    await service.catch_up(ctx, schedule=True)
    await ctx.jobs.schedule_interval(
        service.SWEEP_JOB,
        key=service.SWEEP_KEY,
        every=service.SWEEP_EVERY,
        start_at=utcnow() + service.SWEEP_EVERY,
    )


@plugin.on_event(WINDOW_CREATED)
@plugin.on_event(WINDOW_UPDATED)
@plugin.on_event(WINDOW_STATUS_CHANGED)
@plugin.on_event(WINDOW_DELETED)
async def sync_jobs(ctx: Context, event: Event) -> None:
    """(Re)schedule or cancel a window's transition jobs from the stored window.

    Done once the change has committed, in every process (broadcast): a rolled-back change
    schedules nothing, and no job can fire before its window is visible.
    """
    await service.sync_jobs(ctx, event.payload["windowId"])


@plugin.on_event("catalog.system.deleted", mode="work_queue", group="system-cleanup")
async def forget_system(ctx: Context, event: Event) -> None:
    """Remove a deleted system from every window (idempotent: a redelivery finds nothing)."""
    await service.forget_system(ctx, event.payload["systemId"], event.payload.get("systemName"))
