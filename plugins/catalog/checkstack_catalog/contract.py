"""The catalog plugin's contract: access rules, wire types, procedures and events (SPEC §6.1).

Importable without the server: other plugins (maintenance, incident, healthcheck) import the
resource types, event names and wire types from here, never the catalog's models or service.

Other plugins resolve system ids in process, as the catalog itself::

    found = await ctx.call("catalog", "resolveSystems", {"ids": ids}, as_service=True)
    # ResolvedSystems(systems=[System, ...], missing=["<id>", ...])

and clean up after deleted systems on a work queue (exactly one process, handlers idempotent)::

    @plugin.on_event(SYSTEM_DELETED, mode="work_queue", group="system-cleanup")
    async def forget_system(ctx: Context, event: Event) -> None:
        system_id = event.payload["systemId"]
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from checkstack_core import (
    AccessRule,
    Contract,
    EventType,
    InstanceAccess,
    Schema,
    mutation,
    query,
)
from checkstack_core.limits import json_too_deep

PLUGIN_ID = "catalog"

#: The team-grant resource type of systems (``auth`` grants, ``ctx.admitted_ids``).
SYSTEM = "catalog.system"
#: The resource type of groups (named in ``catalog.group.deleted``; groups have no team grants).
GROUP = "catalog.group"

read = AccessRule(
    "catalog", "read", "View systems and groups in the catalog", default=True, public=True
)
manage = AccessRule("catalog", "manage", "Create, change and delete systems and groups")

#: Qualified rule ids, as held by principals and passed to ``ctx.admitted_ids(rule_id=...)``.
READ_RULE = read.qualified_id(PLUGIN_ID)  # "catalog.catalog.read"
MANAGE_RULE = manage.qualified_id(PLUGIN_ID)  # "catalog.catalog.manage"

# -- limits ----------------------------------------------------------------------------------------

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
#: Largest ``metadata`` object, measured as encoded JSON.
MAX_METADATA_BYTES = 16 * 1024
#: Deepest nesting of ``metadata`` (the object itself is level 1). Stored free-form JSON is
#: decoded again by every later read, so a deep document would break reads for everyone.
MAX_METADATA_DEPTH = 16
MAX_ID_LENGTH = 100
#: Most ids one ``resolveSystems`` call may name.
MAX_RESOLVE_IDS = 1000

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]
Metadata = dict[str, Any]


def check_metadata_depth(metadata: Any) -> None:
    """ValueError (a validation issue, from an input's ``__post_init__``) when ``metadata``
    nests deeper than :data:`MAX_METADATA_DEPTH`."""
    if isinstance(metadata, dict) and json_too_deep(
        msgspec.json.encode(metadata), MAX_METADATA_DEPTH
    ):
        raise ValueError(f"metadata must be nested at most {MAX_METADATA_DEPTH} levels deep")


# -- wire types ------------------------------------------------------------------------------------


class System(Schema):
    """A system of the catalog: a service, host or component whose status is shown."""

    id: str
    name: str
    description: str | None
    metadata: Metadata
    #: Groups the system belongs to, ordered by group name.
    group_ids: list[str]
    created_at: datetime
    updated_at: datetime


class Group(Schema):
    """A named set of systems (many-to-many: a system may be in several groups)."""

    id: str
    name: str
    description: str | None
    metadata: Metadata
    #: Member systems the caller may read, ordered by system name.
    system_ids: list[str]
    created_at: datetime
    updated_at: datetime


class SystemsFilter(Schema):
    #: Only the systems of this group (NOT_FOUND if the group does not exist).
    group_id: Id | None = None


class SystemList(Schema):
    systems: list[System]


class GroupList(Schema):
    groups: list[Group]


class SystemId(Schema):
    id: Id


class GroupId(Schema):
    id: Id


class Deleted(Schema):
    """The id of what was deleted."""

    id: str


class NewSystem(Schema):
    name: Name
    description: Description | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_metadata_depth(self.metadata)


class SystemUpdate(Schema):
    """Only the fields present change; ``"description": null`` clears the description."""

    id: Id
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        check_metadata_depth(self.metadata)


class NewGroup(Schema):
    name: Name
    description: Description | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_metadata_depth(self.metadata)


class GroupUpdate(Schema):
    """Only the fields present change; ``"description": null`` clears the description."""

    id: Id
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        check_metadata_depth(self.metadata)


class Membership(Schema):
    group_id: Id
    system_id: Id


class SystemIds(Schema):
    ids: Annotated[list[Id], msgspec.Meta(max_length=MAX_RESOLVE_IDS)]


class ResolvedSystems(Schema):
    #: The systems found, in the order their ids were asked for (duplicates once).
    systems: list[System]
    #: The ids asked for that name no system.
    missing: list[str]


#: A system named by the input's ``id``, checked before the handler runs (SPEC §5.5).
one_system = InstanceAccess(SYSTEM, id_param="id")

# -- procedures ------------------------------------------------------------------------------------

# -- events ----------------------------------------------------------------------------------------
# Emitted after the change commits. Payload keys are camelCase, like the wire.

#: ``{"systemId", "systemName"}``
SYSTEM_CREATED = "catalog.system.created"
#: ``{"systemId", "systemName"}``
SYSTEM_UPDATED = "catalog.system.updated"
#: ``{"systemId", "systemName", "resourceType": "catalog.system", "resourceId": <systemId>}``
SYSTEM_DELETED = "catalog.system.deleted"
#: ``{"groupId", "groupName"}``
GROUP_CREATED = "catalog.group.created"
#: ``{"groupId", "groupName"}`` (also when its members change)
GROUP_UPDATED = "catalog.group.updated"
#: ``{"groupId", "groupName", "resourceType": "catalog.group", "resourceId": <groupId>}``
GROUP_DELETED = "catalog.group.deleted"

EVENTS = [
    EventType(SYSTEM_CREATED, "A system was created", payload="{systemId, systemName}"),
    EventType(SYSTEM_UPDATED, "A system was changed", payload="{systemId, systemName}"),
    EventType(
        SYSTEM_DELETED,
        "A system was deleted",
        payload="{systemId, systemName, resourceType, resourceId}",
    ),
    EventType(GROUP_CREATED, "A group was created", payload="{groupId, groupName}"),
    EventType(GROUP_UPDATED, "A group was changed", payload="{groupId, groupName}"),
    EventType(
        GROUP_DELETED,
        "A group was deleted",
        payload="{groupId, groupName, resourceType, resourceId}",
    ),
]


contract = Contract(
    PLUGIN_ID,
    rules=[read, manage],
    procedures=[
        query(
            "getSystems",
            input=SystemsFilter,
            output=SystemList,
            caller="public",
            rules=[read],
            instance=InstanceAccess(SYSTEM, list_key="systems"),
            description="Every system the caller may read, by name; optionally one group's.",
        ),
        query(
            "getSystem",
            input=SystemId,
            output=System,
            caller="public",
            rules=[read],
            instance=one_system,
            description="One system by id.",
        ),
        mutation(
            "createSystem",
            input=NewSystem,
            output=System,
            rules=[manage],
            description="Add a system; names are unique (trimmed, ignoring case).",
        ),
        mutation(
            "updateSystem",
            input=SystemUpdate,
            output=System,
            rules=[manage],
            instance=one_system,
            description="Change a system's name, description (null clears it) or metadata.",
        ),
        mutation(
            "deleteSystem",
            input=SystemId,
            output=Deleted,
            rules=[manage],
            instance=one_system,
            description="Delete a system and its group memberships.",
        ),
        query(
            "getGroups",
            output=GroupList,
            caller="public",
            rules=[read],
            description="Every group, by name, with the member systems the caller may read.",
        ),
        mutation(
            "createGroup",
            input=NewGroup,
            output=Group,
            rules=[manage],
            description="Add a group; names are unique (trimmed, ignoring case).",
        ),
        mutation(
            "updateGroup",
            input=GroupUpdate,
            output=Group,
            rules=[manage],
            description="Change a group's name, description (null clears it) or metadata.",
        ),
        mutation(
            "deleteGroup",
            input=GroupId,
            output=Deleted,
            rules=[manage],
            description="Delete a group (its systems stay).",
        ),
        mutation(
            "addSystemToGroup",
            input=Membership,
            output=Group,
            rules=[manage],
            description="Put a system into a group (already a member: no change).",
        ),
        mutation(
            "removeSystemFromGroup",
            input=Membership,
            output=Group,
            rules=[manage],
            description="Take a system out of a group (not a member: no change).",
        ),
        query(
            "resolveSystems",
            input=SystemIds,
            output=ResolvedSystems,
            caller="service",
            rules=[read],
            description="For other plugins: the systems with these ids, and the ids not found.",
        ),
    ],
    events=EVENTS,
)
