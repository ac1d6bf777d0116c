"""Implementations of the catalog's procedures (the rules are in contract.py, the logic in
service.py)."""

from __future__ import annotations

from checkstack_core import Context, Handlers

from . import service
from .contract import (
    Deleted,
    Group,
    GroupId,
    GroupList,
    GroupUpdate,
    Membership,
    NewGroup,
    NewSystem,
    ResolvedSystems,
    System,
    SystemId,
    SystemIds,
    SystemList,
    SystemsFilter,
    SystemUpdate,
    contract,
)

handlers = Handlers(contract)


@handlers.implement("getSystems")
async def get_systems(ctx: Context, input: SystemsFilter) -> SystemList:
    # A guest without catalog.catalog.read is refused by the dispatcher (401) before this runs.
    return SystemList(systems=await service.list_systems(ctx, input.group_id))


@handlers.implement("getSystem")
async def get_system(ctx: Context, input: SystemId) -> System:
    return await service.get_system(ctx, input.id)


@handlers.implement("createSystem")
async def create_system(ctx: Context, input: NewSystem) -> System:
    return await service.create_system(ctx, input)


@handlers.implement("updateSystem")
async def update_system(ctx: Context, input: SystemUpdate) -> System:
    return await service.update_system(ctx, input)


@handlers.implement("deleteSystem")
async def delete_system(ctx: Context, input: SystemId) -> Deleted:
    return Deleted(id=await service.delete_system(ctx, input.id))


@handlers.implement("getGroups")
async def get_groups(ctx: Context, _: None) -> GroupList:
    return GroupList(groups=await service.list_groups(ctx))


@handlers.implement("createGroup")
async def create_group(ctx: Context, input: NewGroup) -> Group:
    return await service.create_group(ctx, input)


@handlers.implement("updateGroup")
async def update_group(ctx: Context, input: GroupUpdate) -> Group:
    return await service.update_group(ctx, input)


@handlers.implement("deleteGroup")
async def delete_group(ctx: Context, input: GroupId) -> Deleted:
    return Deleted(id=await service.delete_group(ctx, input.id))


@handlers.implement("addSystemToGroup")
async def add_system_to_group(ctx: Context, input: Membership) -> Group:
    return await service.add_to_group(ctx, input.group_id, input.system_id)


@handlers.implement("removeSystemFromGroup")
async def remove_system_from_group(ctx: Context, input: Membership) -> Group:
    return await service.remove_from_group(ctx, input.group_id, input.system_id)


@handlers.implement("resolveSystems")
async def resolve_systems(ctx: Context, input: SystemIds) -> ResolvedSystems:
    return await service.resolve_systems(ctx, input.ids)
