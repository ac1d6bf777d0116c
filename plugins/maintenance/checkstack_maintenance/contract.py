"""The maintenance plugin's contract: access rules, wire types, procedures, events and the
"is notification suppressed?" service (SPEC §6.3).

Importable without the server: clients and other plugins (healthcheck) read it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import msgspec
from msgspec import UNSET, Meta, UnsetType

from checkstack_core import (
    AccessRule,
    Contract,
    EventType,
    InstanceAccess,
    Level,
    Schema,
    ServiceRef,
    mutation,
    query,
)

if TYPE_CHECKING:
    from checkstack_core import Context

PLUGIN_ID = "maintenance"

read = AccessRule(
    "maintenance", "read", "View maintenance windows and their timelines", default=True, public=True
)
manage = AccessRule(
    "maintenance",
    "manage",
    "Schedule, edit, complete, cancel and delete maintenance windows and post updates",
)
READ = read.qualified_id(PLUGIN_ID)  # "maintenance.maintenance.read"
MANAGE = manage.qualified_id(PLUGIN_ID)  # "maintenance.maintenance.manage"

#: The team-grant resource type that guards windows: the catalog's systems they affect.
SYSTEM = "catalog.system"

Status = Literal["scheduled", "in_progress", "completed", "cancelled"]
TimelineKind = Literal["created", "status", "update", "edited"]
STATUSES: tuple[Status, ...] = ("scheduled", "in_progress", "completed", "cancelled")
#: Statuses a window can still leave (its automatic transitions are pending).
ACTIVE_STATUSES: tuple[Status, ...] = ("scheduled", "in_progress")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

Id = Annotated[str, Meta(min_length=1, max_length=100)]
Title = Annotated[str, Meta(min_length=1, max_length=200)]
Description = Annotated[str, Meta(max_length=10_000)]
Message = Annotated[str, Meta(min_length=1, max_length=10_000)]
SystemIds = Annotated[list[Id], Meta(min_length=1, max_length=200)]
#: Times must carry a zone (``...Z`` or ``+02:00``); they are stored and returned in UTC.
Time = Annotated[datetime, Meta(tz=True)]


# -- outputs ---------------------------------------------------------------------------------------


class Author(Schema):
    """Who did something: the calling principal, or ``kind: "system"`` for automatic changes."""

    kind: str
    id: str | None = None
    name: str | None = None


class Window(Schema):
    """A maintenance window. ``systemIds`` lists only the systems the caller may read."""

    id: str
    title: str
    description: str | None
    start_at: datetime
    end_at: datetime
    system_ids: list[str]
    suppress_notifications: bool
    status: Status
    created_at: datetime
    updated_at: datetime
    created_by: Author | None = None


class TimelineEntry(Schema):
    """One entry of a window's timeline; ``fromStatus``/``toStatus`` are set on status changes."""

    id: str
    window_id: str
    kind: TimelineKind
    message: str
    author: Author
    created_at: datetime
    from_status: Status | None = None
    to_status: Status | None = None


class WindowDetail(Window, kw_only=True):
    """A window with its whole timeline, oldest entry first."""

    timeline: list[TimelineEntry]


class WindowList(Schema):
    """One page of windows (newest ``startAt`` first) and how many match in all."""

    windows: list[Window]
    total: int


class ActiveWindows(Schema):
    windows: list[Window]


class DeletedWindow(Schema):
    id: str


class Suppressed(Schema):
    suppressed: bool


# -- inputs ----------------------------------------------------------------------------------------


class GetWindowsInput(Schema):
    """Filters and page of ``getWindows``; every field is optional."""

    #: One status or a list of statuses.
    status: Status | Annotated[list[Status], Meta(min_length=1)] | None = None
    #: Only windows affecting this system.
    system_id: Id | None = None
    #: Only windows overlapping ``[from, to)``: ``endAt > from`` and ``startAt < to``.
    from_: Time | None = msgspec.field(default=None, name="from")
    to: Time | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    offset: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 0


class WindowId(Schema):
    id: Id


class SystemIdInput(Schema):
    system_id: Id


class ScheduleWindowInput(Schema):
    title: Title
    start_at: Time
    end_at: Time
    system_ids: SystemIds
    description: Description | None = None
    suppress_notifications: bool = False


class UpdateWindowInput(Schema):
    """Partial update: absent fields stay, ``description: null`` clears the description."""

    id: Id
    title: Title | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    start_at: Time | UnsetType = UNSET
    end_at: Time | UnsetType = UNSET
    system_ids: SystemIds | UnsetType = UNSET
    suppress_notifications: bool | UnsetType = UNSET


class AddUpdateInput(Schema):
    id: Id
    message: Message
    #: Optionally move the window to this status (a legal transition only).
    status: Status | None = None


class CloseWindowInput(Schema):
    """``completeWindow`` / ``cancelWindow``: the timeline message is optional."""

    id: Id
    message: Message | None = None


# -- access ---------------------------------------------------------------------------------------
# Windows are guarded by the catalog systems they affect. Only the plugin reads the database, so
# the resolvers ask it through a service it provides: this module stays importable without the
# server.


class WindowSystems(Protocol):
    """How the resolvers below learn a window's systems (provided by the maintenance plugin)."""

    async def of_window(self, ctx: Context, window_id: str) -> list[str]:
        """The systems ``window_id`` affects, sorted (none when it does not exist)."""
        ...


#: The maintenance plugin's own lookup for its access resolvers (not meant for other plugins).
WINDOW_SYSTEMS = ServiceRef[WindowSystems]("maintenance.systems")


async def _readable_systems(ctx: Context, input: WindowId) -> list[str]:
    """What ``getWindow``'s pre-check hands the dispatcher: a window is readable when at least
    one of its systems is, so only those are checked. When none is, all are handed over and the
    dispatcher answers as usual: the missing rule, or ``Access denied to catalog.system <id>``.
    An unknown window has none: the global rule decides, then the handler answers NOT_FOUND."""
    ids = await ctx.service(WINDOW_SYSTEMS).of_window(ctx, input.id)
    if not ids:
        return ids
    admitted = await ctx.admitted_ids(SYSTEM, ids, Level.READ, rule_id=READ)
    return [i for i in ids if i in admitted] or ids


async def _managed_systems(ctx: Context, input: Any) -> list[str]:
    """The mutations by id: every system the window affects, before and after the change; each
    must admit the caller."""
    ids = await ctx.service(WINDOW_SYSTEMS).of_window(ctx, input.id)
    if isinstance(input, UpdateWindowInput) and not isinstance(input.system_ids, UnsetType):
        ids += [i for i in dict.fromkeys(input.system_ids) if i not in ids]
    return ids


read_window = InstanceAccess(SYSTEM, resolve=_readable_systems)
read_system = InstanceAccess(SYSTEM, id_param="systemId")
manage_systems = InstanceAccess(SYSTEM, ids_param="systemIds")
manage_window = InstanceAccess(SYSTEM, resolve=_managed_systems)


# -- events ----------------------------------------------------------------------------------------
# Emitted after the change commits. Every payload carries ``windowId`` and ``systemIds``.

#: ``{windowId, title, status, startAt, endAt, systemIds, suppressNotifications}``
WINDOW_CREATED = "maintenance.window.created"
#: ``{windowId, title, status, startAt, endAt, systemIds, suppressNotifications, kind}``;
#: ``kind`` is ``"edited"`` (fields changed), ``"update"`` (a timeline message) or
#: ``"system_removed"`` (an affected system was deleted from the catalog).
WINDOW_UPDATED = "maintenance.window.updated"
#: ``{windowId, fromStatus, toStatus, systemIds}``, for every status change.
WINDOW_STATUS_CHANGED = "maintenance.window.status_changed"
#: ``{windowId, systemIds}``, after the status change event of a completion.
WINDOW_COMPLETED = "maintenance.window.completed"
#: ``{windowId, systemIds}``, after the status change event of a cancellation.
WINDOW_CANCELLED = "maintenance.window.cancelled"
#: ``{windowId, systemIds}``
WINDOW_DELETED = "maintenance.window.deleted"

_WINDOW = "{windowId, title, status, startAt, endAt, systemIds, suppressNotifications}"
EVENTS = [
    EventType(WINDOW_CREATED, "A maintenance window was scheduled", payload=_WINDOW),
    EventType(
        WINDOW_UPDATED,
        "A maintenance window was edited or updated",
        payload=_WINDOW + " + kind (edited, update, system_removed)",
    ),
    EventType(
        WINDOW_STATUS_CHANGED,
        "A maintenance window started, completed or was cancelled",
        payload="{windowId, fromStatus, toStatus, systemIds}",
    ),
    EventType(WINDOW_COMPLETED, "A maintenance window completed", payload="{windowId, systemIds}"),
    EventType(
        WINDOW_CANCELLED, "A maintenance window was cancelled", payload="{windowId, systemIds}"
    ),
    EventType(WINDOW_DELETED, "A maintenance window was deleted", payload="{windowId, systemIds}"),
]


contract = Contract(
    PLUGIN_ID,
    rules=[read, manage],
    procedures=[
        query(
            "getWindows",
            input=GetWindowsInput,
            output=WindowList,
            caller="public",
            rules=[read],
            description="List maintenance windows, newest start first, filtered and paginated. "
            "Shows the windows affecting at least one system the caller may read.",
        ),
        query(
            "getWindow",
            input=WindowId,
            output=WindowDetail,
            caller="public",
            rules=[read],
            instance=read_window,
            description="One maintenance window with its timeline (oldest entry first).",
        ),
        query(
            "getActiveWindowsForSystem",
            input=SystemIdInput,
            output=ActiveWindows,
            caller="public",
            rules=[read],
            instance=read_system,
            description="The windows in progress that affect a system.",
        ),
        mutation(
            "scheduleWindow",
            input=ScheduleWindowInput,
            output=Window,
            rules=[manage],
            instance=manage_systems,
            description="Schedule a maintenance window on existing systems. A window whose start "
            "has already passed starts at once.",
        ),
        mutation(
            "updateWindow",
            input=UpdateWindowInput,
            output=Window,
            rules=[manage],
            instance=manage_window,
            description="Edit a scheduled or in-progress window; its automatic transitions move "
            "with its times.",
        ),
        mutation(
            "addUpdate",
            input=AddUpdateInput,
            output=TimelineEntry,
            rules=[manage],
            instance=manage_window,
            description="Post a message to a window's timeline, optionally with a status change.",
        ),
        mutation(
            "completeWindow",
            input=CloseWindowInput,
            output=Window,
            rules=[manage],
            instance=manage_window,
            description="Complete an in-progress window now.",
        ),
        mutation(
            "cancelWindow",
            input=CloseWindowInput,
            output=Window,
            rules=[manage],
            instance=manage_window,
            description="Cancel a scheduled or in-progress window.",
        ),
        mutation(
            "deleteWindow",
            input=WindowId,
            output=DeletedWindow,
            rules=[manage],
            instance=manage_window,
            description="Delete a window and its timeline.",
        ),
        query(
            "isSuppressed",
            input=SystemIdInput,
            output=Suppressed,
            caller="service",
            description="Whether an in-progress window with suppressNotifications affects the "
            "system now (for other plugins).",
        ),
    ],
    events=EVENTS,
)


# -- the in-process service ------------------------------------------------------------------------


class MaintenanceStatus(Protocol):
    """What other plugins (healthcheck) ask: is a system under suppressing maintenance?"""

    async def suppressed(
        self, system_id: str, at: datetime | None = None, *, ctx: Context | None = None
    ) -> bool:
        """True when a window with ``suppressNotifications`` affects ``system_id``.

        ``at=None`` (now) asks about the current status: a window that is ``in_progress``.
        A given ``at`` asks about the plan: a window, not cancelled, with
        ``startAt <= at < endAt``.

        With ``ctx`` (a handler's or job's context) it asks on that call's connection, in its
        transaction; without, in a short read of its own (for callers outside any call).
        """
        ...


#: ``ctx.service(MAINTENANCE_STATUS).suppressed(system_id)``
MAINTENANCE_STATUS = ServiceRef[MaintenanceStatus]("maintenance.status")
