"""The incident plugin object: contract, handlers, tables, migrations, jobs and event
handlers (the package's ``plugin``, loaded on first use)."""

from __future__ import annotations

from pathlib import Path

from checkstack_core import Context, DeliveryMode, Event, Plugin

from . import hooks, service
from .contract import INCIDENT_STATUS, INCIDENT_SYSTEMS, IncidentStatus, IncidentSystems, contract
from .handlers import handlers
from .models import IncidentRow, IncidentSystem, TimelineRow

plugin = Plugin(
    id="incident",
    name="Incidents",
    description="Incidents on catalog systems: severity, status, a timeline of updates, "
    "resolving and reopening, and notification suppression while they are open.",
    contract=contract,
    handlers=handlers,
    depends_on=["catalog"],
    models=[IncidentRow, IncidentSystem, TimelineRow],
    migrations=Path(__file__).parent / "migrations",
    hooks=hooks,
)


@plugin.on_event("catalog.system.deleted", mode=DeliveryMode.WORK_QUEUE, group="system-cleanup")
async def forget_deleted_system(ctx: Context, event: Event) -> None:
    """Remove a deleted system from every incident (idempotent: redelivery changes nothing)."""
    system_id = event.payload.get("systemId")
    if isinstance(system_id, str) and system_id:
        await service.forget_system(ctx, system_id, event.payload.get("systemName"))


@plugin.provide(INCIDENT_STATUS)
def incident_status(ctx: Context) -> IncidentStatus:
    return service.SuppressionService(ctx)


@plugin.provide(INCIDENT_SYSTEMS)
def incident_systems(ctx: Context) -> IncidentSystems:
    return service.SystemsLookup()
