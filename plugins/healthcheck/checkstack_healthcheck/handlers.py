"""Implementations of the healthcheck plugin's procedures (logic in :mod:`.service`)."""

from __future__ import annotations

from checkstack_core import Context, Handlers

from . import service
from .contract import (
    AssignInput,
    Assignment,
    Availability,
    AvailabilityInput,
    BulkSystemHealth,
    CheckId,
    CreateHealthCheckInput,
    DailyAvailability,
    DailyAvailabilityInput,
    Deleted,
    GetHealthChecksInput,
    GetHistoryInput,
    HealthCheck,
    HealthCheckList,
    History,
    HourlyStats,
    HourlyStatsInput,
    Run,
    RunId,
    RunNowInput,
    StatusChanges,
    StatusChangesInput,
    StrategyList,
    SystemHealth,
    SystemIdInput,
    SystemIdsInput,
    Unassigned,
    UnassignInput,
    UpdateHealthCheckInput,
    contract,
)

handlers = Handlers(contract)


@handlers.implement("getStrategies")
async def get_strategies(ctx: Context, input: None) -> StrategyList:
    return service.get_strategies(ctx)


@handlers.implement("getHealthChecks")
async def get_health_checks(ctx: Context, input: GetHealthChecksInput) -> HealthCheckList:
    return await service.list_checks(ctx, input)


@handlers.implement("getHealthCheck")
async def get_health_check(ctx: Context, input: CheckId) -> HealthCheck:
    return await service.get_check(ctx, input)


@handlers.implement("createHealthCheck")
async def create_health_check(ctx: Context, input: CreateHealthCheckInput) -> HealthCheck:
    return await service.create_check(ctx, input)


@handlers.implement("updateHealthCheck")
async def update_health_check(ctx: Context, input: UpdateHealthCheckInput) -> HealthCheck:
    return await service.update_check(ctx, input)


@handlers.implement("deleteHealthCheck")
async def delete_health_check(ctx: Context, input: CheckId) -> Deleted:
    return await service.delete_check(ctx, input)


@handlers.implement("pauseHealthCheck")
async def pause_health_check(ctx: Context, input: CheckId) -> HealthCheck:
    return await service.set_paused(ctx, input, True)


@handlers.implement("resumeHealthCheck")
async def resume_health_check(ctx: Context, input: CheckId) -> HealthCheck:
    return await service.set_paused(ctx, input, False)


@handlers.implement("assignHealthCheck")
async def assign_health_check(ctx: Context, input: AssignInput) -> Assignment:
    return await service.assign(ctx, input)


@handlers.implement("unassignHealthCheck")
async def unassign_health_check(ctx: Context, input: UnassignInput) -> Unassigned:
    return await service.unassign(ctx, input)


@handlers.implement("runNow")
async def run_now(ctx: Context, input: RunNowInput) -> Run:
    return await service.run_now(ctx, input)


@handlers.implement("getHistory")
async def get_history(ctx: Context, input: GetHistoryInput) -> History:
    return await service.history(ctx, input)


@handlers.implement("getRun")
async def get_run(ctx: Context, input: RunId) -> Run:
    return await service.get_run(ctx, input)


@handlers.implement("getSystemHealth")
async def get_system_health(ctx: Context, input: SystemIdInput) -> SystemHealth:
    return await service.system_health(ctx, input)


@handlers.implement("getBulkSystemHealth")
async def get_bulk_system_health(ctx: Context, input: SystemIdsInput) -> BulkSystemHealth:
    return await service.bulk_system_health(ctx, input)


@handlers.implement("getAvailability")
async def get_availability(ctx: Context, input: AvailabilityInput) -> Availability:
    return await service.availability(ctx, input)


@handlers.implement("getDailyAvailability")
async def get_daily_availability(ctx: Context, input: DailyAvailabilityInput) -> DailyAvailability:
    return await service.daily_availability(ctx, input)


@handlers.implement("getHourlyStats")
async def get_hourly_stats(ctx: Context, input: HourlyStatsInput) -> HourlyStats:
    return await service.hourly_stats(ctx, input)


@handlers.implement("getStatusChanges")
async def get_status_changes(ctx: Context, input: StatusChangesInput) -> StatusChanges:
    return await service.status_changes(ctx, input)
