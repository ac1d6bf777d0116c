"""The healthcheck plugin's contract: access rules, wire types, procedures and events
(SPEC §6.2).

Importable without the server: clients, strategy plugins and other plugins read it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from checkstack_core import (
    AccessRule,
    Contract,
    EventType,
    InstanceAccess,
    Schema,
    mutation,
    query,
)

PLUGIN_ID = "healthcheck"

status = AccessRule(
    "status",
    "read",
    "View system health, check names and statuses, availability and run history (no raw results)",
    default=True,
    public=True,
)
read = AccessRule(
    "healthcheck",
    "read",
    "Read health check configurations (targets included; secret fields masked)",
)
manage = AccessRule(
    "healthcheck",
    "manage",
    "Create, edit, pause, assign, run and delete health checks",
)
details = AccessRule(
    "details",
    "read",
    "View the raw result of each run (may expose response bodies and headers)",
)
STATUS_READ = status.qualified_id(PLUGIN_ID)  # "healthcheck.status.read"
READ = read.qualified_id(PLUGIN_ID)  # "healthcheck.healthcheck.read"
MANAGE = manage.qualified_id(PLUGIN_ID)  # "healthcheck.healthcheck.manage"
DETAILS_READ = details.qualified_id(PLUGIN_ID)  # "healthcheck.details.read"

#: Health is shown per catalog system: team grants on systems decide who sees which.
SYSTEM = "catalog.system"

Status = Literal["healthy", "degraded", "unhealthy"]
STATUSES: tuple[Status, ...] = ("healthy", "degraded", "unhealthy")
#: Worse statuses sort higher.
SEVERITY: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}

#: Days ``getDailyAvailability`` reaches back at most (the status page's uptime bars).
DAILY_DAYS = 90
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

Id = Annotated[str, Meta(min_length=1, max_length=100)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
StrategyId = Annotated[str, Meta(min_length=1, max_length=100)]
IntervalSeconds = Annotated[int, Meta(ge=1, le=86_400)]
TimeoutSeconds = Annotated[float, Meta(ge=0.1, le=300)]
Count = Annotated[int, Meta(ge=1, le=100)]
Time = Annotated[datetime, Meta(tz=True)]


# -- thresholds ------------------------------------------------------------------------------------


class ConsecutiveThresholds(Schema, tag="consecutive", tag_field="mode"):
    """Streaks: ``unhealthyAfter`` consecutive unhealthy runs → unhealthy; ``degradedAfter``
    consecutive failed (degraded or unhealthy) runs → degraded; ``healthyAfter`` consecutive
    healthy runs → healthy; in between the status stays what it was."""

    healthy_after: Count = 1
    degraded_after: Count = 2
    unhealthy_after: Count = 5


class WindowThresholds(Schema, tag="window", tag_field="mode"):
    """N of the last M: among the last ``windowSize`` runs, ``unhealthyAt`` unhealthy runs →
    unhealthy, else ``degradedAt`` failed (degraded or unhealthy) runs → degraded, else
    healthy."""

    window_size: Count = 10
    degraded_at: Count = 3
    unhealthy_at: Count = 7


Thresholds = ConsecutiveThresholds | WindowThresholds


# -- outputs ---------------------------------------------------------------------------------------


class StrategyInfo(Schema):
    id: str
    display_name: str
    description: str
    #: JSON schema of the strategy's config; secret fields carry ``"x-secret": true``.
    config_schema: dict[str, Any]


class StrategyList(Schema):
    strategies: list[StrategyInfo]


class Assignment(Schema):
    """A check assigned to a catalog system."""

    check_id: str
    system_id: str
    enabled: bool
    thresholds: Thresholds
    status: Status
    last_run_at: datetime | None = None


class HealthCheck(Schema):
    """A health check. Secret config fields read ``"********"``. ``assignments`` lists only the
    systems the caller may read."""

    id: str
    name: str
    strategy_id: str
    config: dict[str, Any]
    interval_seconds: int
    timeout_seconds: float
    paused: bool
    assignments: list[Assignment]
    created_at: datetime
    updated_at: datetime


class HealthCheckList(Schema):
    health_checks: list[HealthCheck]


class Run(Schema):
    """One run. ``result`` (the strategy's structured data) is present only for holders of
    ``healthcheck.details.read``."""

    id: int
    check_id: str
    system_id: str | None
    status: Status
    latency_ms: float | None
    message: str
    timestamp: datetime
    result: dict[str, Any] | UnsetType | None = UNSET


class History(Schema):
    """One page of runs, how many match in all, and the cursor of the next page (``null``:
    this is the last)."""

    runs: list[Run]
    total: int
    next_cursor: str | None


class CheckHealth(Schema):
    check_id: str
    check_name: str
    status: Status
    enabled: bool
    paused: bool
    last_run_at: datetime | None
    last_status: Status | None
    last_latency_ms: float | None


class SystemHealth(Schema):
    """A system's health: the worst of its enabled checks (``healthy`` when it has none)."""

    system_id: str
    status: Status
    changed_at: datetime | None
    checks: list[CheckHealth]


class BulkSystemHealth(Schema):
    #: Keyed by system id; systems the caller may not read are left out.
    statuses: dict[str, SystemHealth]


class AvailabilityWindow(Schema):
    #: Percent of runs that were up (healthy or degraded); ``null`` without runs.
    percent: float | None
    runs: int


class Availability(Schema):
    """Availability over the last ``24h``, ``7d``, ``30d`` and ``90d`` (keys of ``windows``),
    from the hourly aggregates (whole hours)."""

    system_id: str
    check_id: str | None
    windows: dict[str, AvailabilityWindow]


class DayAvailability(Schema):
    """One UTC day of a system's runs, all its checks together."""

    day: date
    runs: int
    healthy: int
    degraded: int
    unhealthy: int
    #: Percent of runs up (healthy or degraded).
    percent: float
    #: The worst status among the day's runs.
    worst: Status


class DailyAvailability(Schema):
    #: Keyed by system id (unreadable ones left out): the days with runs, oldest first.
    systems: dict[str, list[DayAvailability]]


class HourlyBucket(Schema):
    check_id: str
    bucket_start: datetime
    runs: int
    healthy: int
    degraded: int
    unhealthy: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None


class HourlyStats(Schema):
    buckets: list[HourlyBucket]


class StatusChange(Schema):
    system_id: str
    from_status: Status
    to_status: Status
    suppressed: bool
    at: datetime


class StatusChanges(Schema):
    changes: list[StatusChange]


class Deleted(Schema):
    id: str


class Unassigned(Schema):
    check_id: str
    system_id: str


# -- inputs ----------------------------------------------------------------------------------------


class GetHealthChecksInput(Schema):
    #: Only checks assigned to this system.
    system_id: Id | None = None


class CheckId(Schema):
    id: Id


class CreateHealthCheckInput(Schema):
    name: Name
    strategy_id: StrategyId
    #: Validated against the strategy's config type (``getStrategies`` serves its schema).
    config: dict[str, Any]
    interval_seconds: IntervalSeconds = 60
    #: Hard limit of one run.
    timeout_seconds: TimeoutSeconds = 10.0
    paused: bool = False


class UpdateHealthCheckInput(Schema):
    """Partial update. A secret config field sent back as ``"********"`` keeps its value."""

    id: Id
    name: Name | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    interval_seconds: IntervalSeconds | UnsetType = UNSET
    timeout_seconds: TimeoutSeconds | UnsetType = UNSET


class AssignInput(Schema):
    """Assign check ``id`` to a system (again: update the assignment)."""

    id: Id
    system_id: Id
    enabled: bool = True
    #: Default: consecutive, 1 success → healthy, 2 failures → degraded, 5 → unhealthy.
    thresholds: Thresholds | None = None


class UnassignInput(Schema):
    id: Id
    system_id: Id


class RunNowInput(Schema):
    """Run check ``id`` now. With ``systemId`` (an assigned system) the run counts for that
    system's health; without, it is a test run stored under the check alone."""

    id: Id
    system_id: Id | None = None


class GetHistoryInput(Schema):
    """Filters, order and page of ``getHistory``; every field is optional.

    Pages are keyset-paginated: pass the previous page's ``nextCursor`` as ``cursor`` and the
    same filters; runs landing meanwhile never shift a page (no duplicates, no gaps).
    """

    system_id: Id | None = None
    check_id: Id | None = None
    status: Status | Annotated[list[Status], Meta(min_length=1, max_length=3)] | None = None
    #: Runs at or after ``from`` and before ``to``.
    from_: Time | None = msgspec.field(default=None, name="from")
    to: Time | None = None
    order: Literal["desc", "asc"] = "desc"
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    cursor: Annotated[str, Meta(max_length=200)] | None = None


class RunId(Schema):
    id: Annotated[int, Meta(ge=1, le=2**62)]


class SystemIdInput(Schema):
    system_id: Id


class SystemIdsInput(Schema):
    system_ids: Annotated[list[Id], Meta(max_length=500)]


class AvailabilityInput(Schema):
    system_id: Id
    check_id: Id | None = None


class DailyAvailabilityInput(Schema):
    system_ids: Annotated[list[Id], Meta(max_length=500)]
    #: The last ``days`` UTC days, today included.
    days: Annotated[int, Meta(ge=1, le=DAILY_DAYS)] = DAILY_DAYS


class HourlyStatsInput(Schema):
    system_id: Id
    check_id: Id | None = None
    from_: Time | None = msgspec.field(default=None, name="from")
    to: Time | None = None


class StatusChangesInput(Schema):
    system_id: Id
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE


# -- access ----------------------------------------------------------------------------------------

one_system = InstanceAccess(SYSTEM, id_param="systemId")
systems_map = InstanceAccess(SYSTEM, record_key="statuses")
daily_map = InstanceAccess(SYSTEM, record_key="systems")


# -- events ----------------------------------------------------------------------------------------
# Emitted after the change commits.

#: ``{systemId, previousStatus, status, suppressed, healthyChecks, totalChecks, timestamp}``:
#: one of the three below, once per change of a system's health. ``suppressed`` is true while a
#: suppressing maintenance window is in progress or a suppressing incident is open for the
#: system (the status still changes; notifications stay silent).
SYSTEM_HEALTHY = "healthcheck.system.healthy"
SYSTEM_DEGRADED = "healthcheck.system.degraded"
SYSTEM_UNHEALTHY = "healthcheck.system.unhealthy"
SYSTEM_EVENTS: dict[str, str] = {
    "healthy": SYSTEM_HEALTHY,
    "degraded": SYSTEM_DEGRADED,
    "unhealthy": SYSTEM_UNHEALTHY,
}
#: ``{checkId}`` after a check's schedule changed (created, edited, paused, resumed, assigned,
#: unassigned, deleted): the scheduler looks for due runs at once.
CHECK_CHANGED = "healthcheck.check.changed"

_HEALTH = "{systemId, previousStatus, status, suppressed, healthyChecks, totalChecks, timestamp}"
EVENTS = [
    EventType(SYSTEM_HEALTHY, "A system became healthy", payload=_HEALTH),
    EventType(SYSTEM_DEGRADED, "A system became degraded", payload=_HEALTH),
    EventType(SYSTEM_UNHEALTHY, "A system became unhealthy", payload=_HEALTH),
    EventType(
        CHECK_CHANGED,
        "A health check's schedule changed (created, edited, paused, resumed, assigned, "
        "unassigned or deleted)",
        payload="{checkId}",
    ),
]


contract = Contract(
    PLUGIN_ID,
    rules=[status, read, manage, details],
    procedures=[
        query(
            "getStrategies",
            input=None,
            output=StrategyList,
            rules=[read],
            description="The installed check strategies with their config JSON schemas.",
        ),
        query(
            "getHealthChecks",
            input=GetHealthChecksInput,
            output=HealthCheckList,
            rules=[read],
            description="Every health check by name (secret config fields masked), optionally "
            "only those assigned to one system.",
        ),
        query(
            "getHealthCheck",
            input=CheckId,
            output=HealthCheck,
            rules=[read],
            description="One health check (secret config fields masked).",
        ),
        mutation(
            "createHealthCheck",
            input=CreateHealthCheckInput,
            output=HealthCheck,
            rules=[manage],
            description="Create a check; its config is validated against the strategy's type.",
        ),
        mutation(
            "updateHealthCheck",
            input=UpdateHealthCheckInput,
            output=HealthCheck,
            rules=[manage],
            description="Change name, config, interval or timeout; the schedule follows at once.",
        ),
        mutation(
            "deleteHealthCheck",
            input=CheckId,
            output=Deleted,
            rules=[manage],
            description="Delete a check with its assignments, runs and aggregates.",
        ),
        mutation(
            "pauseHealthCheck",
            input=CheckId,
            output=HealthCheck,
            rules=[manage],
            description="Stop running a check (its assignments stay).",
        ),
        mutation(
            "resumeHealthCheck",
            input=CheckId,
            output=HealthCheck,
            rules=[manage],
            description="Run a paused check again, on its interval.",
        ),
        mutation(
            "assignHealthCheck",
            input=AssignInput,
            output=Assignment,
            rules=[manage],
            instance=one_system,
            description="Assign a check to a catalog system (or update the assignment's "
            "thresholds and enabled flag).",
        ),
        mutation(
            "unassignHealthCheck",
            input=UnassignInput,
            output=Unassigned,
            rules=[manage],
            instance=one_system,
            description="Stop running a check for a system.",
        ),
        mutation(
            "runNow",
            input=RunNowInput,
            output=Run,
            rules=[manage],
            instance=one_system,
            description="Run a check once now; the run is stored and returned.",
        ),
        query(
            "getHistory",
            input=GetHistoryInput,
            output=History,
            caller="public",
            rules=[status],
            description="Runs of the systems the caller may read, filtered, newest first by "
            "default, keyset-paginated, with a total. Raw results only with "
            "healthcheck.details.read.",
        ),
        query(
            "getRun",
            input=RunId,
            output=Run,
            rules=[details],
            description="One run with its raw result.",
        ),
        query(
            "getSystemHealth",
            input=SystemIdInput,
            output=SystemHealth,
            caller="public",
            rules=[status],
            instance=one_system,
            description="A system's health and the status of each of its checks.",
        ),
        query(
            "getBulkSystemHealth",
            input=SystemIdsInput,
            output=BulkSystemHealth,
            caller="public",
            rules=[status],
            instance=systems_map,
            description="The health of several systems, keyed by id (unreadable ones left out).",
        ),
        query(
            "getAvailability",
            input=AvailabilityInput,
            output=Availability,
            caller="public",
            rules=[status],
            instance=one_system,
            description="Percent of runs up over 24 h, 7 d, 30 d and 90 d (from hourly "
            "aggregates).",
        ),
        query(
            "getDailyAvailability",
            input=DailyAvailabilityInput,
            output=DailyAvailability,
            caller="public",
            rules=[status],
            instance=daily_map,
            description="Per system (keyed by id, unreadable ones left out), its UTC days with "
            "runs among the last N (default and at most 90): runs by status, percent up and "
            "the worst status (the status page's uptime bars).",
        ),
        query(
            "getHourlyStats",
            input=HourlyStatsInput,
            output=HourlyStats,
            caller="public",
            rules=[status],
            instance=one_system,
            description="Hourly aggregates (counts by status, average and p95 latency) of a "
            "system's checks; default the last 24 hours.",
        ),
        query(
            "getStatusChanges",
            input=StatusChangesInput,
            output=StatusChanges,
            caller="public",
            rules=[status],
            instance=one_system,
            description="A system's recorded health changes, newest first.",
        ),
    ],
    events=EVENTS,
)
