"""Domain logic of the catalog: systems, groups, memberships, and what callers may see of them.

Every function works in the caller's transaction (``ctx.session``); events are emitted through
``ctx.emit`` and so reach subscribers only after the transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Conflict, Context, Forbidden, Level, NotFound, ServiceRef
from checkstack_core.db import conflict_insert, core_rows, utcnow
from checkstack_core.errors import validation_error

from .contract import (
    GROUP,
    GROUP_CREATED,
    GROUP_DELETED,
    GROUP_UPDATED,
    MANAGE_RULE,
    MAX_METADATA_BYTES,
    MAX_NAME_LENGTH,
    READ_RULE,
    SYSTEM,
    SYSTEM_CREATED,
    SYSTEM_DELETED,
    SYSTEM_UPDATED,
    Group,
    GroupUpdate,
    NewGroup,
    NewSystem,
    ResolvedSystems,
    System,
    SystemUpdate,
)
from .models import GroupRow, MembershipRow, SystemRow

#: The auth plugin's service that drops a deleted resource's team grants (docs/auth.md). Named
#: rather than imported: the catalog needs no auth distribution, and without it there are no
#: stored grants to drop.
AUTH_ACCESS: ServiceRef[Any] = ServiceRef("auth.access")

#: Ids per ``IN (...)`` list, well below every driver's parameter limit.
CHUNK = 500

# -- validation ------------------------------------------------------------------------------------


def name_key(name: str) -> str:
    """The form names are compared in: trimmed and Unicode case-folded."""
    return name.strip().casefold()


def clean_name(name: str) -> str:
    """``name`` trimmed; BAD_REQUEST when nothing is left."""
    cleaned = name.strip()
    if not cleaned:
        raise validation_error([{"message": "The name must not be blank", "path": ["name"]}])
    if len(cleaned) > MAX_NAME_LENGTH:  # msgspec checked the untrimmed length already
        raise validation_error(
            [{"message": f"Expected `str` of length <= {MAX_NAME_LENGTH}", "path": ["name"]}]
        )
    return cleaned


def clean_description(description: str | None) -> str | None:
    """``description`` trimmed; blank means none."""
    if description is None:
        return None
    return description.strip() or None


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """BAD_REQUEST when ``metadata`` is larger than :data:`MAX_METADATA_BYTES` as JSON."""
    if len(msgspec.json.encode(metadata)) > MAX_METADATA_BYTES:
        raise validation_error(
            [
                {
                    "message": f"Metadata must be at most {MAX_METADATA_BYTES} bytes of JSON",
                    "path": ["metadata"],
                }
            ]
        )
    return metadata


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


# -- loading rows ----------------------------------------------------------------------------------


async def system_row(session: AsyncSession, system_id: str, *, lock: bool = False) -> SystemRow:
    """The system's row, or NOT_FOUND. ``lock``: held until the call ends (``SELECT ... FOR
    UPDATE`` on PostgreSQL), so of concurrent deletions one deletes and the others, once it has
    committed, find nothing (SQLite's ``BEGIN IMMEDIATE`` already takes turns)."""
    row = await session.get(SystemRow, system_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"System not found: {system_id}")
    return row


async def group_row(session: AsyncSession, group_id: str, *, lock: bool = False) -> GroupRow:
    """The group's row, or NOT_FOUND; ``lock`` as for :func:`system_row`."""
    row = await session.get(GroupRow, group_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"Group not found: {group_id}")
    return row


async def _require_group(session: AsyncSession, group_id: str) -> None:
    """NOT_FOUND unless the group exists (without loading it)."""
    found = await core_rows(
        session, sa.select(col(GroupRow.id)).where(col(GroupRow.id) == group_id)
    )
    if not found:
        raise NotFound(f"Group not found: {group_id}")


NamedRow = TypeVar("NamedRow", SystemRow, GroupRow)


async def _unique_name(
    session: AsyncSession, model: type[SystemRow] | type[GroupRow], name: str, own_id: str | None
) -> str:
    """The normalised key of ``name``; CONFLICT when another row already uses it."""
    key = name_key(name)
    clash = (
        await session.exec(select(model.id).where(col(model.name_key) == key).limit(1))
    ).first()
    if clash is not None and clash != own_id:
        raise _name_conflict(model, name)
    return key


def _name_conflict(model: type[SystemRow] | type[GroupRow], name: str) -> Conflict:
    kind = "system" if model is SystemRow else "group"
    return Conflict(f'A {kind} named "{name}" already exists')


async def _flush_named(
    session: AsyncSession, model: type[SystemRow] | type[GroupRow], name: str
) -> None:
    """Flush; a unique-index violation (a concurrent create won) is the same friendly CONFLICT."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _name_conflict(model, name) from exc


async def _insert_named(
    session: AsyncSession, model: type[NamedRow], input: NewSystem | NewGroup
) -> NamedRow:
    """A new system or group row from ``input``, inserted (names checked for uniqueness)."""
    name = clean_name(input.name)
    now = utcnow()
    row = model(
        id=str(uuid.uuid4()),
        name=name,
        name_key=await _unique_name(session, model, name, None),
        description=clean_description(input.description),
        meta=check_metadata(input.metadata),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await _flush_named(session, model, name)
    return row


async def _named_changes(
    session: AsyncSession, row: SystemRow | GroupRow, input: SystemUpdate | GroupUpdate
) -> dict[str, Any]:
    """The column changes ``input`` asks of ``row``: only fields present and different."""
    changes: dict[str, Any] = {}
    if input.name is not msgspec.UNSET:
        name = clean_name(input.name)
        if name != row.name:
            changes["name"] = name
            changes["name_key"] = await _unique_name(session, type(row), name, row.id)
    if input.description is not msgspec.UNSET:
        description = clean_description(input.description)
        if description != row.description:
            changes["description"] = description
    if input.metadata is not msgspec.UNSET and check_metadata(input.metadata) != row.meta:
        changes["meta"] = input.metadata
    for field, value in changes.items():
        setattr(row, field, value)
    return changes


# -- output ----------------------------------------------------------------------------------------


def _system(row: SystemRow, group_ids: list[str]) -> System:
    return System(
        id=row.id,
        name=row.name,
        description=row.description,
        metadata=row.meta,
        group_ids=group_ids,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _group(row: GroupRow, system_ids: list[str]) -> Group:
    return Group(
        id=row.id,
        name=row.name,
        description=row.description,
        metadata=row.meta,
        system_ids=system_ids,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# Lists and single reads are built from columns (one Core ``SELECT`` joining each row to its
# related ids), not ORM instances: a round trip and the identity map's bookkeeping per row are
# what a read costs most.

_SYSTEM_COLUMNS: tuple[Any, ...] = (
    col(SystemRow.id),
    col(SystemRow.name),
    col(SystemRow.description),
    col(SystemRow.meta),
    col(SystemRow.created_at),
    col(SystemRow.updated_at),
)
_GROUP_COLUMNS: tuple[Any, ...] = (
    col(GroupRow.id),
    col(GroupRow.name),
    col(GroupRow.description),
    col(GroupRow.meta),
    col(GroupRow.created_at),
    col(GroupRow.updated_at),
)


def _systems_statement(*where: Any) -> sa.Select[Any]:
    return (
        sa.select(*_SYSTEM_COLUMNS, col(MembershipRow.group_id))
        .select_from(SystemRow)
        .outerjoin(MembershipRow, col(MembershipRow.system_id) == col(SystemRow.id))
        .outerjoin(GroupRow, col(GroupRow.id) == col(MembershipRow.group_id))
        .where(*where)
        .order_by(col(SystemRow.name_key), col(SystemRow.id), col(GroupRow.name_key))
    )


#: Every system: built once, so the hottest read (a status page's ``getSystems``) spends nothing
#: on constructing or keying the statement.
_ALL_SYSTEMS = _systems_statement()


async def read_systems(session: AsyncSession, *where: Any) -> list[System]:
    """The systems matching ``where``, by name, each with its groups (by group name), in one
    query: one row per (system, group) pair, a system in no group once with no group."""
    rows = await core_rows(session, _systems_statement(*where) if where else _ALL_SYSTEMS)
    systems: list[System] = []
    last: System | None = None
    for id, name, description, meta, created_at, updated_at, group_id in rows:
        if last is None or last.id != id:
            last = System(
                id=id,
                name=name,
                description=description,
                metadata=meta,
                group_ids=[],
                created_at=created_at,
                updated_at=updated_at,
            )
            systems.append(last)
        if group_id is not None:
            last.group_ids.append(group_id)
    return systems


async def read_groups(ctx: Context, *where: Any) -> list[Group]:
    """The groups matching ``where``, by name, listing only the member systems the caller may
    read (by system name): one query for the groups and their members, one access decision for
    all members (a team-only system's id is not shown to outsiders)."""
    rows = await core_rows(
        ctx.session,
        sa.select(*_GROUP_COLUMNS, col(MembershipRow.system_id))
        .select_from(GroupRow)
        .outerjoin(MembershipRow, col(MembershipRow.group_id) == col(GroupRow.id))
        .outerjoin(SystemRow, col(SystemRow.id) == col(MembershipRow.system_id))
        .where(*where)
        .order_by(col(GroupRow.name_key), col(GroupRow.id), col(SystemRow.name_key)),
    )
    groups: list[Group] = []
    last: Group | None = None
    for id, name, description, meta, created_at, updated_at, system_id in rows:
        if last is None or last.id != id:
            last = Group(
                id=id,
                name=name,
                description=description,
                metadata=meta,
                system_ids=[],
                created_at=created_at,
                updated_at=updated_at,
            )
            groups.append(last)
        if system_id is not None:
            last.system_ids.append(system_id)
    members = list(dict.fromkeys(s for group in groups for s in group.system_ids))
    admitted = await readable(ctx, members)
    if len(admitted) < len(members):
        for group in groups:
            group.system_ids = [s for s in group.system_ids if s in admitted]
    return groups


async def readable(ctx: Context, system_ids: list[str]) -> set[str]:
    """Which of ``system_ids`` the caller may read (one access decision for all of them)."""
    if not system_ids:
        return set()
    return await ctx.admitted_ids(SYSTEM, system_ids, Level.READ, rule_id=READ_RULE)


# -- systems ---------------------------------------------------------------------------------------


async def list_systems(ctx: Context, group_id: str | None) -> list[System]:
    """The systems the caller may read, by name; only ``group_id``'s members when given."""
    where: list[Any] = []
    if group_id is not None:
        await _require_group(ctx.session, group_id)
        where.append(
            col(SystemRow.id).in_(
                select(col(MembershipRow.system_id)).where(col(MembershipRow.group_id) == group_id)
            )
        )
    systems = await read_systems(ctx.session, *where)
    admitted = await readable(ctx, [system.id for system in systems])
    if len(admitted) == len(systems):
        return systems
    return [system for system in systems if system.id in admitted]


async def get_system(ctx: Context, system_id: str) -> System:
    found = await read_systems(ctx.session, col(SystemRow.id) == system_id)
    if not found:
        raise NotFound(f"System not found: {system_id}")
    return found[0]


async def resolve_systems(ctx: Context, ids: list[str]) -> ResolvedSystems:
    """The systems named by ``ids`` (in that order, duplicates once) and the ids not found."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, System] = {}
    for chunk in _chunks(wanted):
        systems = await read_systems(ctx.session, col(SystemRow.id).in_(chunk))
        found.update((system.id, system) for system in systems)
    return ResolvedSystems(
        systems=[found[i] for i in wanted if i in found],
        missing=[i for i in wanted if i not in found],
    )


async def create_system(ctx: Context, input: NewSystem) -> System:
    row = await _insert_named(ctx.session, SystemRow, input)
    await ctx.emit(SYSTEM_CREATED, {"systemId": row.id, "systemName": row.name})
    return _system(row, [])


async def update_system(ctx: Context, input: SystemUpdate) -> System:
    """Change only the fields present in ``input``; nothing changed means no event."""
    session = ctx.session
    row = await system_row(session, input.id)
    if await _named_changes(session, row, input):
        row.updated_at = utcnow()
        session.add(row)
        await _flush_named(session, SystemRow, row.name)
        await ctx.emit(SYSTEM_UPDATED, {"systemId": row.id, "systemName": row.name})
    return await get_system(ctx, row.id)


async def delete_system(ctx: Context, system_id: str) -> str:
    """Delete a system, its memberships and its team grants; emit ``catalog.system.deleted``."""
    session = ctx.session
    row = await system_row(session, system_id, lock=True)
    name = row.name
    # The foreign key cascades too; deleting explicitly keeps this right on a database that
    # does not enforce foreign keys.
    await session.exec(sa.delete(MembershipRow).where(col(MembershipRow.system_id) == system_id))
    await session.delete(row)
    await session.flush()
    await _forget_grants(ctx, SYSTEM, system_id)
    await ctx.emit(
        SYSTEM_DELETED,
        {
            "systemId": system_id,
            "systemName": name,
            "resourceType": SYSTEM,
            "resourceId": system_id,
        },
    )
    return system_id


async def _forget_grants(ctx: Context, resource_type: str, resource_id: str) -> None:
    """Drop the deleted resource's team grants in this transaction, so they go exactly when the
    deletion commits (a no-op without the auth plugin)."""
    try:
        access = ctx.service(AUTH_ACCESS)
    except LookupError:
        return
    await access.forget_resource(ctx, resource_type, resource_id)


# -- groups ----------------------------------------------------------------------------------------


async def list_groups(ctx: Context) -> list[Group]:
    return await read_groups(ctx)


async def get_group(ctx: Context, group_id: str) -> Group:
    found = await read_groups(ctx, col(GroupRow.id) == group_id)
    if not found:
        raise NotFound(f"Group not found: {group_id}")
    return found[0]


async def create_group(ctx: Context, input: NewGroup) -> Group:
    row = await _insert_named(ctx.session, GroupRow, input)
    await ctx.emit(GROUP_CREATED, {"groupId": row.id, "groupName": row.name})
    return _group(row, [])


async def update_group(ctx: Context, input: GroupUpdate) -> Group:
    """Change only the fields present in ``input``; nothing changed means no event."""
    session = ctx.session
    row = await group_row(session, input.id)
    if await _named_changes(session, row, input):
        await _touch_group(ctx, row)
        await _flush_named(session, GroupRow, row.name)
    return await get_group(ctx, row.id)


async def delete_group(ctx: Context, group_id: str) -> str:
    """Delete a group and its memberships (the systems stay); emit ``catalog.group.deleted``."""
    session = ctx.session
    row = await group_row(session, group_id, lock=True)
    name = row.name
    await session.exec(sa.delete(MembershipRow).where(col(MembershipRow.group_id) == group_id))
    await session.delete(row)
    await session.flush()
    await _forget_grants(ctx, GROUP, group_id)
    await ctx.emit(
        GROUP_DELETED,
        {"groupId": group_id, "groupName": name, "resourceType": GROUP, "resourceId": group_id},
    )
    return group_id


async def _touch_group(ctx: Context, row: GroupRow) -> None:
    row.updated_at = utcnow()
    ctx.session.add(row)
    await ctx.emit(GROUP_UPDATED, {"groupId": row.id, "groupName": row.name})


async def _membership_group(ctx: Context, group_id: str, system_id: str) -> GroupRow:
    """The group, after checking both exist and the caller may manage the system.

    A global manager still needs a team grant on a team-only system to move it between groups.
    """
    group = await group_row(ctx.session, group_id)
    await system_row(ctx.session, system_id)
    admitted = await ctx.admitted_ids(SYSTEM, [system_id], Level.MANAGE, rule_id=MANAGE_RULE)
    if system_id not in admitted:
        raise Forbidden(f"Access denied to {SYSTEM} {system_id}")
    return group


async def add_to_group(ctx: Context, group_id: str, system_id: str) -> Group:
    """Put the system into the group; already a member is no change (and no event)."""
    group = await _membership_group(ctx, group_id, system_id)
    added = await ctx.session.exec(
        conflict_insert(ctx.host.db.dialect, MembershipRow)
        .values(system_id=system_id, group_id=group_id, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    if added.rowcount:
        await _touch_group(ctx, group)
        await ctx.session.flush()
    return await get_group(ctx, group_id)


async def remove_from_group(ctx: Context, group_id: str, system_id: str) -> Group:
    """Take the system out of the group; not a member is no change (and no event)."""
    group = await _membership_group(ctx, group_id, system_id)
    removed = await ctx.session.exec(
        sa.delete(MembershipRow).where(
            col(MembershipRow.group_id) == group_id, col(MembershipRow.system_id) == system_id
        )
    )
    if removed.rowcount:
        await _touch_group(ctx, group)
        await ctx.session.flush()
    return await get_group(ctx, group_id)
