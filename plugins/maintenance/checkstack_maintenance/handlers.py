"""Implementations of the maintenance plugin's procedures (logic in :mod:`.service`)."""

from __future__ import annotations

from checkstack_core import Context, Handlers

from . import service
from .contract import (
    ActiveWindows,
    AddUpdateInput,
    CloseWindowInput,
    DeletedWindow,
    GetWindowsInput,
    ScheduleWindowInput,
    Suppressed,
    SystemIdInput,
    TimelineEntry,
    UpdateWindowInput,
    Window,
    WindowDetail,
    WindowId,
    WindowList,
    contract,
)

handlers = Handlers(contract)


@handlers.implement("getWindows")
async def get_windows(ctx: Context, input: GetWindowsInput) -> WindowList:
    return await service.list_windows(ctx, input)


@handlers.implement("getWindow")
async def get_window(ctx: Context, input: WindowId) -> WindowDetail:
    return await service.get_window(ctx, input)


@handlers.implement("getActiveWindowsForSystem")
async def get_active_windows_for_system(ctx: Context, input: SystemIdInput) -> ActiveWindows:
    return await service.active_windows_for_system(ctx, input)


@handlers.implement("scheduleWindow")
async def schedule_window(ctx: Context, input: ScheduleWindowInput) -> Window:
    return await service.schedule_window(ctx, input)


@handlers.implement("updateWindow")
async def update_window(ctx: Context, input: UpdateWindowInput) -> Window:
    return await service.update_window(ctx, input)


@handlers.implement("addUpdate")
async def add_update(ctx: Context, input: AddUpdateInput) -> TimelineEntry:
    return await service.add_update(ctx, input)


@handlers.implement("completeWindow")
async def complete_window(ctx: Context, input: CloseWindowInput) -> Window:
    return await service.close_window(ctx, input, "completed")


@handlers.implement("cancelWindow")
async def cancel_window(ctx: Context, input: CloseWindowInput) -> Window:
    return await service.close_window(ctx, input, "cancelled")


@handlers.implement("deleteWindow")
async def delete_window(ctx: Context, input: WindowId) -> DeletedWindow:
    return await service.delete_window(ctx, input)


@handlers.implement("isSuppressed")
async def is_suppressed(ctx: Context, input: SystemIdInput) -> Suppressed:
    return Suppressed(suppressed=await service.is_suppressed(ctx.session, input.system_id))
