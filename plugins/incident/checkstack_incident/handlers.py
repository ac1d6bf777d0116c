"""Implementations of the incident plugin's procedures (access is declared in the contract)."""

from __future__ import annotations

from checkstack_core import Context, Handlers

from . import service
from .contract import (
    AddUpdateInput,
    CreateIncidentInput,
    DeletedIncident,
    GetIncidentInput,
    GetIncidentsInput,
    Incident,
    IncidentDetail,
    IncidentId,
    IncidentPage,
    IsSuppressedInput,
    ResolveIncidentInput,
    Suppression,
    UpdateIncidentInput,
    UpdateResult,
    contract,
)

handlers = Handlers(contract)


@handlers.implement("getIncidents")
async def get_incidents(ctx: Context, input: GetIncidentsInput) -> IncidentPage:
    return await service.list_incidents(ctx, input)


@handlers.implement("getIncident")
async def get_incident(ctx: Context, input: GetIncidentInput) -> IncidentDetail:
    return await service.get_incident(ctx, input.id, input.timeline_limit, input.timeline_offset)


@handlers.implement("createIncident")
async def create_incident(ctx: Context, input: CreateIncidentInput) -> Incident:
    return await service.create_incident(ctx, input)


@handlers.implement("updateIncident")
async def update_incident(ctx: Context, input: UpdateIncidentInput) -> Incident:
    return await service.update_incident(ctx, input)


@handlers.implement("addUpdate")
async def add_update(ctx: Context, input: AddUpdateInput) -> UpdateResult:
    return await service.add_update(ctx, input)


@handlers.implement("resolveIncident")
async def resolve_incident(ctx: Context, input: ResolveIncidentInput) -> UpdateResult:
    return await service.resolve_incident(ctx, input.id, input.message)


@handlers.implement("deleteIncident")
async def delete_incident(ctx: Context, input: IncidentId) -> DeletedIncident:
    await service.delete_incident(ctx, input.id)
    return DeletedIncident(id=input.id)


@handlers.implement("isSuppressed")
async def is_suppressed(ctx: Context, input: IsSuppressedInput) -> Suppression:
    return Suppression(suppressed=await service.suppressed(ctx.session, input.system_id))
