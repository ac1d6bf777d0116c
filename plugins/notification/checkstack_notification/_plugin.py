"""The notification plugin object: contract, handlers, tables, migrations, the trigger and
delivery event handlers and jobs (the package's ``plugin``, loaded on first use)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from checkstack_core import Context, Event, JobRun, Plugin, vault
from checkstack_core.db import utcnow

from . import outbox, service, triggers
from .contract import DELIVERIES_QUEUED, contract
from .handlers import handlers
from .models import MODELS

RETENTION_JOB = "notification.retention"
RETENTION_KEY = "notification:retention"

plugin = Plugin(
    id="notification",
    name="Notifications",
    description="Channels (Apprise URLs, signed webhooks), subscriptions, an in-app inbox and "
    "outgoing integration webhooks, delivered with retries.",
    contract=contract,
    handlers=handlers,
    depends_on=["auth", "catalog"],
    models=MODELS,
    migrations=Path(__file__).parent / "migrations",
)


@plugin.provide(service.RUNTIME)
def runtime(ctx: Context) -> service.Runtime:
    """The settings (checked once: a typo disables the plugin with a clear error) and the key."""
    host = ctx.host
    return service.Runtime(
        settings=service.Settings.load(host.settings.plugin("notification")),
        vault=vault.Vault(host.settings.secret_key, service.VAULT_PURPOSE),
    )


# -- triggers: work-queue handlers (one process handles each event), retried on failure ---------


@plugin.on_event("healthcheck.system.healthy", mode="work_queue", group="triggers")
@plugin.on_event("healthcheck.system.degraded", mode="work_queue", group="triggers")
@plugin.on_event("healthcheck.system.unhealthy", mode="work_queue", group="triggers")
async def on_health(ctx: Context, event: Event) -> None:
    trigger = await triggers.health_trigger(ctx, event)
    if trigger is not None:
        await triggers.announce(ctx, await triggers.notify(ctx, trigger))


@plugin.on_event("incident.incident.created", mode="work_queue", group="triggers")
@plugin.on_event("incident.incident.updated", mode="work_queue", group="triggers")
@plugin.on_event("incident.incident.resolved", mode="work_queue", group="triggers")
async def on_incident(ctx: Context, event: Event) -> None:
    trigger = await triggers.incident_trigger(ctx, event)
    if trigger is not None:
        await triggers.announce(ctx, await triggers.notify(ctx, trigger))


@plugin.on_event("maintenance.window.created", mode="work_queue", group="triggers")
@plugin.on_event("maintenance.window.status_changed", mode="work_queue", group="triggers")
@plugin.on_event("maintenance.window.completed", mode="work_queue", group="triggers")
async def on_maintenance(ctx: Context, event: Event) -> None:
    trigger = await triggers.maintenance_trigger(ctx, event)
    if trigger is not None:
        await triggers.announce(ctx, await triggers.notify(ctx, trigger))


@plugin.on_declared_events(mode="work_queue", group="integrations")
async def on_any(ctx: Context, event: Event) -> None:
    """Forward an event declared in any loaded plugin's contract (a third party's included) to
    the integrations subscribed to it."""
    await triggers.announce(ctx, await triggers.forward(ctx, event))


# -- delivery -------------------------------------------------------------------------------------


@plugin.on_event(DELIVERIES_QUEUED, mode="work_queue", group="deliveries")
async def on_queued(ctx: Context, event: Event) -> None:
    """Deliveries committed: schedule their first attempt."""
    await outbox.schedule_new(ctx, [str(i) for i in event.payload["ids"]])


@plugin.job("deliver")
async def deliver(ctx: Context, run: JobRun) -> None:
    await outbox.deliver(ctx, run.payload["id"])


@plugin.job("sweep")
async def sweep(ctx: Context, run: JobRun) -> None:
    """Safety net: schedule pending deliveries whose job was lost."""
    await outbox.sweep(ctx)


@plugin.job("retention")
async def retention(ctx: Context, run: JobRun) -> None:
    """Daily: drop delivery logs and inbox entries past ``retention_days``."""
    removed = await service.apply_retention(ctx)
    ctx.logger.info("notification retention removed %s", removed)


@plugin.on_startup
async def resume(ctx: Context) -> None:
    """Deliveries pending when the last process stopped (or was killed) are scheduled again;
    the sweep keeps doing it for jobs lost later."""
    await outbox.sweep(ctx)
    every = timedelta(seconds=service.runtime(ctx).settings.sweep_seconds)
    await ctx.jobs.schedule_interval(
        outbox.SWEEP_JOB, key=outbox.SWEEP_KEY, every=every, start_at=utcnow() + every
    )
    await ctx.jobs.schedule_interval(
        RETENTION_JOB,
        key=RETENTION_KEY,
        every=timedelta(days=1),
        start_at=utcnow() + timedelta(minutes=5),
    )
