"""The incident plugin's contract: access rules, wire types, procedures, events and services.

Importable without the server: clients and other plugins (the healthcheck plugin asking whether
notifications are suppressed) read it. Affected systems are catalog systems; access to an incident
follows access to them (resource type ``catalog.system``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import msgspec
from checkstack_catalog.contract import MAX_ID_LENGTH, SYSTEM

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

PLUGIN_ID = "incident"

read = AccessRule("incident", "read", "View incidents", default=True, public=True)
manage = AccessRule("incident", "manage", "Create, edit, resolve and delete incidents")
READ = read.qualified_id(PLUGIN_ID)
MANAGE = manage.qualified_id(PLUGIN_ID)

# -- value types ----------------------------------------------------------------------------------

Severity = Literal["minor", "major", "critical"]
Status = Literal["investigating", "identified", "monitoring", "resolved"]
#: The statuses an incident may be created with (an incident is never created resolved).
OpenStatus = Literal["investigating", "identified", "monitoring"]
#: What a timeline entry records.
EntryKind = Literal["created", "update", "resolved", "reopened", "system_removed"]
RESOLVED = "resolved"

MAX_PAGE = 200
MAX_TIMELINE_PAGE = 500
_MAX_OFFSET = 2**31 - 1

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
#: A catalog system id (as long as the catalog allows).
SystemId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
SystemIds = Annotated[list[SystemId], msgspec.Meta(min_length=1, max_length=100)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=_MAX_OFFSET)]

# -- outputs --------------------------------------------------------------------------------------


class Author(Schema):
    """Who wrote a timeline entry or created an incident (a user, an application or a plugin)."""

    kind: str
    id: str | None = None
    name: str | None = None


class Incident(Schema):
    """An incident. ``systemIds`` lists only the affected systems the caller may read."""

    id: str
    title: str
    description: str | None
    severity: Severity
    status: Status
    system_ids: list[str]
    suppress_notifications: bool
    created_at: datetime
    updated_at: datetime
    #: Set when the incident was resolved; cleared when it is reopened.
    resolved_at: datetime | None
    created_by: Author | None = None


class TimelineEntry(Schema):
    """One entry of an incident's timeline. ``status`` is the status this entry set (``None``
    when it did not change the status) and ``fromStatus`` the status before it."""

    id: str
    incident_id: str
    kind: EntryKind
    message: str
    status: Status | None
    from_status: Status | None
    author: Author
    created_at: datetime


class IncidentDetail(Incident, kw_only=True):
    """An incident with one page of its timeline (oldest first) and the timeline's length."""

    timeline: list[TimelineEntry]
    timeline_total: int


class IncidentPage(Schema):
    """One page of incidents (newest first) and how many match the filters in total."""

    incidents: list[Incident]
    total: int


class UpdateResult(Schema):
    """The incident after an update, and the timeline entry the update added."""

    incident: Incident
    entry: TimelineEntry


class DeletedIncident(Schema):
    id: str


class Suppression(Schema):
    suppressed: bool


# -- inputs ---------------------------------------------------------------------------------------


class GetIncidentsInput(Schema):
    """Filters and page of ``getIncidents``. Without ``status``, resolved incidents are left out
    unless ``includeResolved``; with ``status``, exactly those statuses are listed."""

    status: Status | Annotated[list[Status], msgspec.Meta(min_length=1)] | None = None
    system_id: SystemId | None = None
    include_resolved: bool = False
    severity: Severity | Annotated[list[Severity], msgspec.Meta(min_length=1)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 50
    offset: Offset = 0


class GetIncidentInput(Schema):
    id: Id
    timeline_limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_TIMELINE_PAGE)] = 100
    timeline_offset: Offset = 0


class CreateIncidentInput(Schema):
    title: Title
    severity: Severity
    system_ids: SystemIds
    description: Description | None = None
    status: OpenStatus = "investigating"
    suppress_notifications: bool = False
    #: The first timeline entry's message (default "Incident created").
    message: Message | None = None


class UpdateIncidentInput(Schema):
    """Fields to change; absent fields stay, ``description: null`` clears the description."""

    id: Id
    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    severity: Severity | msgspec.UnsetType = msgspec.UNSET
    system_ids: SystemIds | msgspec.UnsetType = msgspec.UNSET
    suppress_notifications: bool | msgspec.UnsetType = msgspec.UNSET


class AddUpdateInput(Schema):
    id: Id
    message: Message
    #: The status this update sets; a non-resolved status on a resolved incident reopens it.
    status: Status | None = None


class ResolveIncidentInput(Schema):
    id: Id
    #: The timeline entry's message (default "Incident resolved").
    message: Message | None = None


class IncidentId(Schema):
    id: Id


class IsSuppressedInput(Schema):
    system_id: SystemId


# -- resource access ------------------------------------------------------------------------------
# Resolvers name the catalog systems the dispatcher checks before a handler runs (SPEC §5.5: no
# grants → the global rule decides; team-only → only a team grant admits). They return nothing
# when no named system admits a caller who lacks the global rule, so the dispatcher answers with
# the missing rule (401 for anonymous callers) instead of naming a system.


async def _guarded(
    ctx: Context, ids: list[str], level: Level, rule_id: str, *, any_one: bool = False
) -> list[str]:
    """The system ids the dispatcher should require access to.

    ``any_one``: one admitted system suffices (reads); only the admitted ones are returned then.
    """
    if not ids or (ctx.principal.holds(rule_id) and not any_one):
        return ids
    admitted = await ctx.admitted_ids(SYSTEM, ids, level, rule_id=rule_id)
    if not admitted:
        return ids if ctx.principal.holds(rule_id) else []
    return sorted(admitted) if any_one else ids


class IncidentSystems(Protocol):
    """How the resolvers below learn an incident's systems: a lookup the incident plugin
    provides (its service module reads the database; this module must not import it)."""

    async def of_incident(self, ctx: Context, incident_id: str) -> list[str]:
        """The systems ``incident_id`` affects, sorted (none when it does not exist)."""
        ...


#: The incident plugin's own lookup for its access resolvers (not meant for other plugins).
INCIDENT_SYSTEMS = ServiceRef[IncidentSystems]("incident.systems")


async def _current_systems(ctx: Context, input: Any) -> list[str]:
    return await ctx.service(INCIDENT_SYSTEMS).of_incident(ctx, input.id)


async def _readable_systems(ctx: Context, input: GetIncidentInput) -> list[str]:
    """Reading an incident needs read access to any one of its systems."""
    ids = await _current_systems(ctx, input)
    return await _guarded(ctx, ids, Level.READ, READ, any_one=True)


async def _new_systems(ctx: Context, input: CreateIncidentInput) -> list[str]:
    """Opening an incident needs manage access to every system it will affect."""
    return await _guarded(ctx, list(dict.fromkeys(input.system_ids)), Level.MANAGE, MANAGE)


async def _managed_systems(ctx: Context, input: Any) -> list[str]:
    """Changing an incident needs manage access to every system it affects."""
    return await _guarded(ctx, await _current_systems(ctx, input), Level.MANAGE, MANAGE)


async def _managed_and_new_systems(ctx: Context, input: UpdateIncidentInput) -> list[str]:
    """Editing needs manage access to the systems affected now and to those it would add."""
    ids = await _current_systems(ctx, input)
    if not isinstance(input.system_ids, msgspec.UnsetType):
        ids += [i for i in dict.fromkeys(input.system_ids) if i not in ids]
    return await _guarded(ctx, ids, Level.MANAGE, MANAGE)


manage_incident = InstanceAccess(SYSTEM, resolve=_managed_systems)

# -- events (emitted after the change commits) ----------------------------------------------------

#: ``{incidentId, title, description, severity, status, systemIds, suppressNotifications,
#: createdAt}``
INCIDENT_CREATED = "incident.incident.created"
#: Any change after creation (an edit, a timeline entry, systems removed by catalog cleanup):
#: the common fields plus ``changes`` (names of changed fields) and ``entryId`` (or null).
INCIDENT_UPDATED = "incident.incident.updated"
#: The common fields plus ``fromStatus`` and ``toStatus``.
INCIDENT_STATUS_CHANGED = "incident.incident.status_changed"
#: The common fields plus ``resolvedAt``.
INCIDENT_RESOLVED = "incident.incident.resolved"
#: The common fields plus ``fromStatus`` ("resolved") and ``toStatus``.
INCIDENT_REOPENED = "incident.incident.reopened"
#: ``{incidentId, title, systemIds}``
INCIDENT_DELETED = "incident.incident.deleted"

_COMMON = "{incidentId, title, description, severity, status, systemIds, suppressNotifications}"
EVENTS = [
    EventType(INCIDENT_CREATED, "An incident was reported", payload=_COMMON + " + createdAt"),
    EventType(
        INCIDENT_UPDATED,
        "An incident was edited or updated",
        payload=_COMMON + " + changes, entryId",
    ),
    EventType(
        INCIDENT_STATUS_CHANGED,
        "An incident's status changed",
        payload=_COMMON + " + fromStatus, toStatus",
    ),
    EventType(INCIDENT_RESOLVED, "An incident was resolved", payload=_COMMON + " + resolvedAt"),
    EventType(
        INCIDENT_REOPENED,
        "A resolved incident was reopened",
        payload=_COMMON + " + fromStatus, toStatus",
    ),
    EventType(
        INCIDENT_DELETED, "An incident was deleted", payload="{incidentId, title, systemIds}"
    ),
]


contract = Contract(
    PLUGIN_ID,
    rules=[read, manage],
    procedures=[
        query(
            "getIncidents",
            input=GetIncidentsInput,
            output=IncidentPage,
            caller="public",
            rules=[read],
            description="Incidents newest first, filtered by status, system and severity, one "
            "page at a time, with the total. Only incidents affecting a system the caller may "
            "read are listed.",
        ),
        query(
            "getIncident",
            input=GetIncidentInput,
            output=IncidentDetail,
            caller="public",
            rules=[read],
            instance=InstanceAccess(SYSTEM, resolve=_readable_systems),
            description="One incident with a page of its timeline, oldest entry first.",
        ),
        mutation(
            "createIncident",
            input=CreateIncidentInput,
            output=Incident,
            rules=[manage],
            instance=InstanceAccess(SYSTEM, resolve=_new_systems),
            description="Open an incident on existing systems; its first timeline entry records "
            "the initial status.",
        ),
        mutation(
            "updateIncident",
            input=UpdateIncidentInput,
            output=Incident,
            rules=[manage],
            instance=InstanceAccess(SYSTEM, resolve=_managed_and_new_systems),
            description="Change title, description, severity, affected systems or suppression "
            "(status changes go through addUpdate and resolveIncident).",
        ),
        mutation(
            "addUpdate",
            input=AddUpdateInput,
            output=UpdateResult,
            rules=[manage],
            instance=manage_incident,
            description="Add a timeline entry, optionally setting the status; resolving sets "
            "resolvedAt, a non-resolved status on a resolved incident reopens it.",
        ),
        mutation(
            "resolveIncident",
            input=ResolveIncidentInput,
            output=UpdateResult,
            rules=[manage],
            instance=manage_incident,
            description="Resolve an open incident (CONFLICT if it is already resolved).",
        ),
        mutation(
            "deleteIncident",
            input=IncidentId,
            output=DeletedIncident,
            rules=[manage],
            instance=manage_incident,
            description="Delete an incident and its timeline.",
        ),
        query(
            "isSuppressed",
            input=IsSuppressedInput,
            output=Suppression,
            caller="service",
            rules=[read],
            description="Whether an open incident affecting the system suppresses notifications.",
        ),
    ],
    events=EVENTS,
)

# -- in-process service ---------------------------------------------------------------------------


class IncidentStatus(Protocol):
    """What the incident plugin answers other plugins in process."""

    async def suppressed(
        self, system_id: str, at: datetime | None = None, *, ctx: Context | None = None
    ) -> bool:
        """Whether an open incident with ``suppressNotifications`` affects ``system_id``.

        ``at=None`` asks about now. A given ``at`` asks whether such an incident was open then,
        from its timeline's status history (systems and the flag as they are now).

        With ``ctx`` (a handler's or job's context) it asks on that call's connection, in its
        transaction; without, in a short read of its own (for callers outside any call).
        """
        ...


#: ``ctx.service(INCIDENT_STATUS).suppressed(system_id)`` (twin of the ``isSuppressed`` procedure).
INCIDENT_STATUS = ServiceRef[IncidentStatus]("incident.status")
