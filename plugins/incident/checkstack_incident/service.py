"""Domain logic of the incident plugin: incidents, their affected systems and timelines.

Handlers call these functions in the call's transaction; the events they emit are sent only
once that transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from checkstack_catalog.contract import SYSTEM
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Level, NotFound, Principal
from checkstack_core.db import core_rows, update_unless_moved, utcnow
from checkstack_core.errors import Conflict, validation_error

from .contract import (
    INCIDENT_CREATED,
    INCIDENT_DELETED,
    INCIDENT_REOPENED,
    INCIDENT_RESOLVED,
    INCIDENT_STATUS_CHANGED,
    INCIDENT_UPDATED,
    READ,
    RESOLVED,
    AddUpdateInput,
    Author,
    CreateIncidentInput,
    EntryKind,
    GetIncidentsInput,
    Incident,
    IncidentDetail,
    IncidentPage,
    Severity,
    Status,
    TimelineEntry,
    UpdateIncidentInput,
    UpdateResult,
)
from .models import IncidentRow, IncidentSystem, TimelineRow

CREATED_MESSAGE = "Incident created"
RESOLVED_MESSAGE = "Incident resolved"


# -- reading --------------------------------------------------------------------------------------


def _author(principal: Principal) -> Author:
    return Author(
        kind=str(principal.kind),
        id=principal.id,
        name=principal.name[:200] if principal.name is not None else None,
    )


def _incident(row: IncidentRow, system_ids: Iterable[str]) -> Incident:
    created_by = (
        Author(kind=row.created_by_kind, id=row.created_by_id, name=row.created_by_name)
        if row.created_by_kind
        else None
    )
    return Incident(
        id=row.id,
        title=row.title,
        description=row.description,
        # Only valid values are stored: the inputs are validated against the same literals.
        severity=cast(Severity, row.severity),
        status=cast(Status, row.status),
        system_ids=sorted(system_ids),
        suppress_notifications=row.suppress_notifications,
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        created_by=created_by,
    )


# Lists are built from columns (Core ``SELECT``s joined to the incidents' systems), not ORM
# instances: a round trip and the identity map's bookkeeping per row are what a read costs most.

_INCIDENT_COLUMNS: tuple[Any, ...] = (
    col(IncidentRow.id),
    col(IncidentRow.title),
    col(IncidentRow.description),
    col(IncidentRow.severity),
    col(IncidentRow.status),
    col(IncidentRow.suppress_notifications),
    col(IncidentRow.created_at),
    col(IncidentRow.updated_at),
    col(IncidentRow.resolved_at),
    col(IncidentRow.created_by_kind),
    col(IncidentRow.created_by_id),
    col(IncidentRow.created_by_name),
)


def _incidents_from(rows: Sequence[sa.Row[Any]], readable: set[str]) -> list[Incident]:
    """Incidents from rows of ``_INCIDENT_COLUMNS`` plus ``system_id``, one row per (incident,
    system) pair in incident order; only the ``readable`` systems are listed, sorted."""
    incidents: list[Incident] = []
    last: Incident | None = None
    for row in rows:
        if last is None or last.id != row.id:
            last = Incident(
                id=row.id,
                title=row.title,
                description=row.description,
                severity=row.severity,
                status=row.status,
                system_ids=[],
                suppress_notifications=row.suppress_notifications,
                created_at=row.created_at,
                updated_at=row.updated_at,
                resolved_at=row.resolved_at,
                created_by=Author(
                    kind=row.created_by_kind, id=row.created_by_id, name=row.created_by_name
                )
                if row.created_by_kind
                else None,
            )
            incidents.append(last)
        if row.system_id is not None and row.system_id in readable:
            last.system_ids.append(row.system_id)
    for incident in incidents:
        incident.system_ids.sort()  # as Python orders them, whatever the database's collation
    return incidents


def _entry(row: TimelineRow) -> TimelineEntry:
    return TimelineEntry(
        id=row.id,
        incident_id=row.incident_id,
        kind=cast(EntryKind, row.kind),
        message=row.message,
        status=cast("Status | None", row.status),
        from_status=cast("Status | None", row.from_status),
        author=Author(kind=row.author_kind, id=row.author_id, name=row.author_name),
        created_at=row.created_at,
    )


async def system_ids_of(session: AsyncSession, incident_id: str) -> list[str]:
    """The systems ``incident_id`` affects (empty when it affects none or does not exist)."""
    rows = await session.exec(
        select(IncidentSystem.system_id)
        .where(IncidentSystem.incident_id == incident_id)
        .order_by(col(IncidentSystem.system_id))
    )
    return list(rows.all())


async def _systems_by_incident(
    session: AsyncSession, incident_ids: Sequence[str]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in incident_ids}
    if incident_ids:
        rows = await session.exec(
            select(IncidentSystem).where(col(IncidentSystem.incident_id).in_(incident_ids))
        )
        for link in rows.all():
            found[link.incident_id].append(link.system_id)
    return found


async def _load(session: AsyncSession, incident_id: str, *, fresh: bool = False) -> IncidentRow:
    """The incident, or NOT_FOUND. ``fresh`` overwrites the session's copy with the stored row
    (after a guarded write found the incident changed)."""
    statement = select(IncidentRow).where(IncidentRow.id == incident_id)
    if fresh:
        statement = statement.execution_options(populate_existing=True)
    row = (await session.exec(statement)).first()
    if row is None:
        raise NotFound(f"Incident not found: {incident_id}")
    return row


async def _claim(session: AsyncSession, row: IncidentRow, values: dict[str, Any]) -> bool:
    """Write ``values`` (column names) to the incident unless its status moved since ``row`` was
    read; every change of an incident goes through here. When it moved, ``row`` is re-read
    (NOT_FOUND when the incident is gone) and False is returned, so the caller decides again
    from what is stored now (see :func:`checkstack_core.db.update_unless_moved`)."""
    if await update_unless_moved(session, row, "status", values):
        return True
    await _load(session, row.id, fresh=True)
    return False


async def _touch(session: AsyncSession, row: IncidentRow, now: datetime) -> None:
    """Mark ``row`` changed at ``now``, in whatever status it is when this transaction writes."""
    while not await _claim(session, row, {"updated_at": now}):
        pass


def _one_or_many(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(dict.fromkeys(value))


class _ListStatements:
    """The statements of one ``getIncidents`` shape: which systems the matches affect, and the
    page (how many match in all, a window function computed before LIMIT, and each incident's
    systems, in one query; ``limit`` and ``offset`` are bound parameters)."""

    __slots__ = ("page", "referenced")

    def __init__(self, referenced: Any, page: Any) -> None:
        self.referenced = referenced
        self.page = page


def _statements(conditions: list[Any]) -> _ListStatements:
    referenced = (
        sa.select(col(IncidentSystem.system_id))
        .join(IncidentRow, col(IncidentRow.id) == col(IncidentSystem.incident_id))
        .where(*conditions)
        .distinct()
    )
    page = (
        sa.select(*_INCIDENT_COLUMNS, col(IncidentRow.seq), sa.func.count().over().label("total"))
        .where(*conditions)
        .order_by(col(IncidentRow.created_at).desc(), col(IncidentRow.seq).desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
        .subquery()
    )
    listed = (
        sa.select(page, col(IncidentSystem.system_id))
        .outerjoin(IncidentSystem, col(IncidentSystem.incident_id) == page.c.id)
        .order_by(page.c.created_at.desc(), page.c.seq.desc())
    )
    return _ListStatements(referenced, listed)


#: Built once per (unfiltered, include resolved): building and keying a statement costs more
#: than running it.
_PREPARED: dict[tuple[bool, bool], _ListStatements] = {}


async def list_incidents(ctx: Context, query: GetIncidentsInput) -> IncidentPage:
    """One page of the incidents matching ``query`` that the caller may see, newest first.

    An incident is visible when the caller may read one of its systems (the listed ``systemIds``
    are those), or, for an incident left without systems, when the caller holds the read rule.
    The caller's access is asked once, for every system the matching incidents affect, and
    pushed into the query so ``total`` and the page agree with what the caller sees.
    """
    session = ctx.session
    conditions: list[Any] = []
    statuses = _one_or_many(query.status)
    if statuses is not None:
        conditions.append(col(IncidentRow.status).in_(statuses))
    elif not query.include_resolved:
        conditions.append(IncidentRow.status != RESOLVED)
    severities = _one_or_many(query.severity)
    if severities is not None:
        conditions.append(col(IncidentRow.severity).in_(severities))
    if query.system_id is not None:
        conditions.append(
            col(IncidentRow.id).in_(
                select(IncidentSystem.incident_id).where(
                    IncidentSystem.system_id == query.system_id
                )
            )
        )

    # The default query (a status page: open incidents, no other filter) runs prepared
    # statements; any other filter builds its own.
    default = (
        statuses is None and severities is None and query.system_id is None,
        query.include_resolved,
    )
    prepared = _PREPARED.get(default) if default[0] else None
    if prepared is None:
        prepared = _statements(conditions)
        if default[0]:
            _PREPARED[default] = prepared
    referenced = [row[0] for row in await core_rows(session, prepared.referenced)]
    has_global = ctx.principal.holds(READ)
    admitted = (
        await ctx.admitted_ids(SYSTEM, sorted(referenced), Level.READ, rule_id=READ)
        if referenced
        else set()
    )
    if query.system_id is not None and query.system_id not in admitted:
        # Asking about a system one may not read reveals nothing about it.
        return IncidentPage(incidents=[], total=0)
    page_params = {"limit": query.limit, "offset": query.offset}
    if not (has_global and admitted >= set(referenced)):
        linked = sa.exists().where(col(IncidentSystem.incident_id) == col(IncidentRow.id))
        visible: list[Any] = []
        if admitted:
            visible.append(linked.where(col(IncidentSystem.system_id).in_(sorted(admitted))))
        if has_global:
            visible.append(~linked)
        if not visible:
            return IncidentPage(incidents=[], total=0)
        conditions.append(sa.or_(*visible))
        prepared = _statements(conditions)
    rows = await core_rows(session, prepared.page, page_params)
    incidents = _incidents_from(rows, admitted)
    if rows:
        total = rows[0].total
    elif query.offset:
        # A page past the end says nothing about the total: count.
        counted = sa.select(sa.func.count()).select_from(IncidentRow).where(*conditions)
        total = (await core_rows(session, counted))[0][0]
    else:
        total = 0
    return IncidentPage(incidents=incidents, total=int(total))


async def get_incident(
    ctx: Context, incident_id: str, timeline_limit: int, timeline_offset: int
) -> IncidentDetail:
    """The incident with one page of its timeline, listing the systems the caller may read."""
    session = ctx.session
    row = await _load(session, incident_id)
    system_ids = await system_ids_of(session, incident_id)
    if system_ids:
        system_ids = sorted(await ctx.admitted_ids(SYSTEM, system_ids, Level.READ, rule_id=READ))
    in_incident = TimelineRow.incident_id == incident_id
    total = (
        await session.exec(select(sa.func.count()).select_from(TimelineRow).where(in_incident))
    ).one()
    entries = (
        await session.exec(
            select(TimelineRow)
            .where(in_incident)
            .order_by(col(TimelineRow.created_at), col(TimelineRow.seq))
            .limit(timeline_limit)
            .offset(timeline_offset)
        )
    ).all()
    base = _incident(row, system_ids)
    return IncidentDetail(
        **{f: getattr(base, f) for f in base.__struct_fields__},
        timeline=[_entry(e) for e in entries],
        timeline_total=int(total),
    )


async def suppressed(session: AsyncSession, system_id: str, at: datetime | None = None) -> bool:
    """Whether an open incident affecting ``system_id`` has notifications suppressed.

    ``at`` asks about a past moment: the incident existed then and the last status its timeline
    set up to then was not ``resolved``. The affected systems and the suppression flag are the
    current ones (their history is not kept).
    """
    statement = (
        select(IncidentRow.id)
        .join(IncidentSystem, col(IncidentSystem.incident_id) == col(IncidentRow.id))
        .where(
            IncidentSystem.system_id == system_id,
            col(IncidentRow.suppress_notifications).is_(True),
        )
        .limit(1)
    )
    if at is None:
        statement = statement.where(IncidentRow.status != RESOLVED)
    else:
        status_then = (
            select(TimelineRow.status)
            .where(
                col(TimelineRow.incident_id) == col(IncidentRow.id),
                col(TimelineRow.status).is_not(None),
                col(TimelineRow.created_at) <= at,
            )
            .order_by(col(TimelineRow.created_at).desc(), col(TimelineRow.seq).desc())
            .limit(1)
            .scalar_subquery()
        )
        statement = statement.where(col(IncidentRow.created_at) <= at, status_then != RESOLVED)
    return (await session.exec(statement)).first() is not None


class SystemsLookup:
    """The ``INCIDENT_SYSTEMS`` service the contract's access resolvers ask (in the call's
    transaction, before any handler runs)."""

    async def of_incident(self, ctx: Context, incident_id: str) -> list[str]:
        return await system_ids_of(ctx.session, incident_id)


class SuppressionService:
    """The ``INCIDENT_STATUS`` service: on the caller's connection when given its context, else
    in a short read of its own, so a caller outside any call (a scheduler) can ask."""

    def __init__(self, ctx: Context) -> None:
        self._db = ctx.host.db

    async def suppressed(
        self, system_id: str, at: datetime | None = None, *, ctx: Context | None = None
    ) -> bool:
        if ctx is not None:
            return await suppressed(ctx.session, system_id, at)
        async with self._db.session(read_only=True) as session:
            return await suppressed(session, system_id, at)


# -- changing -------------------------------------------------------------------------------------


def _text(value: str, path: str) -> str:
    """``value`` stripped; blank text is a validation error (msgspec only checks the length)."""
    stripped = value.strip()
    if not stripped:
        raise validation_error([{"message": "Must not be blank", "path": [path]}])
    return stripped


async def _check_systems(ctx: Context, system_ids: Sequence[str]) -> list[str]:
    """The distinct ``system_ids``; NOT_FOUND naming the first that the catalog does not know."""
    wanted = list(dict.fromkeys(system_ids))
    found = msgspec.to_builtins(
        await ctx.call("catalog", "resolveSystems", {"ids": wanted}, as_service=True)
    )
    missing = [i for i in wanted if i in set(found.get("missing") or ())]
    if missing:
        raise NotFound(f"System not found: {missing[0]}", data={"missing": missing})
    return wanted


def _add_entry(
    ctx: Context,
    incident_id: str,
    kind: str,
    message: str,
    *,
    status: str | None = None,
    from_status: str | None = None,
    at: datetime | None = None,
) -> TimelineRow:
    author = _author(ctx.principal)
    entry = TimelineRow(
        id=str(uuid.uuid4()),
        incident_id=incident_id,
        kind=kind,
        message=message,
        status=status,
        from_status=from_status,
        author_kind=author.kind,
        author_id=author.id,
        author_name=author.name,
        created_at=at or utcnow(),
    )
    ctx.session.add(entry)
    return entry


def _payload(incident: Incident, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "incidentId": incident.id,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "systemIds": list(incident.system_ids),
        "suppressNotifications": incident.suppress_notifications,
    }
    payload.update(extra)
    return payload


async def _emit_status_change(
    ctx: Context, incident: Incident, from_status: str, to_status: str
) -> None:
    await ctx.emit(
        INCIDENT_STATUS_CHANGED, _payload(incident, fromStatus=from_status, toStatus=to_status)
    )
    if to_status == RESOLVED:
        resolved_at = incident.resolved_at.isoformat() if incident.resolved_at else None
        await ctx.emit(INCIDENT_RESOLVED, _payload(incident, resolvedAt=resolved_at))
    elif from_status == RESOLVED:
        await ctx.emit(
            INCIDENT_REOPENED, _payload(incident, fromStatus=from_status, toStatus=to_status)
        )


async def create_incident(ctx: Context, data: CreateIncidentInput) -> Incident:
    title = _text(data.title, "title")
    message = _text(data.message, "message") if data.message is not None else CREATED_MESSAGE
    system_ids = await _check_systems(ctx, data.system_ids)
    author = _author(ctx.principal)
    now = utcnow()
    row = IncidentRow(
        id=str(uuid.uuid4()),
        title=title,
        description=data.description,
        severity=data.severity,
        status=data.status,
        suppress_notifications=data.suppress_notifications,
        created_at=now,
        updated_at=now,
        created_by_kind=author.kind,
        created_by_id=author.id,
        created_by_name=author.name,
    )
    ctx.session.add(row)
    ctx.session.add_all(IncidentSystem(incident_id=row.id, system_id=s) for s in system_ids)
    _add_entry(ctx, row.id, "created", message, status=data.status, at=now)
    await ctx.session.flush()
    incident = _incident(row, system_ids)
    await ctx.emit(
        INCIDENT_CREATED,
        _payload(incident, description=row.description, createdAt=now.isoformat()),
    )
    return incident


def _edits(row: IncidentRow, data: UpdateIncidentInput) -> tuple[dict[str, Any], list[str]]:
    """The column values ``data`` changes on ``row`` and the wire names of those fields."""
    values: dict[str, Any] = {}
    changes: list[str] = []
    unset = msgspec.UNSET
    if data.title is not unset:
        title = _text(data.title, "title")
        if title != row.title:
            values["title"] = title
            changes.append("title")
    if data.description is not unset and data.description != row.description:
        values["description"] = data.description
        changes.append("description")
    if data.severity is not unset and data.severity != row.severity:
        values["severity"] = data.severity
        changes.append("severity")
    if (
        data.suppress_notifications is not unset
        and data.suppress_notifications != row.suppress_notifications
    ):
        values["suppress_notifications"] = data.suppress_notifications
        changes.append("suppressNotifications")
    return values, changes


async def update_incident(ctx: Context, data: UpdateIncidentInput) -> Incident:
    """Apply the fields ``data`` carries; no event and no new ``updatedAt`` when nothing changed."""
    session = ctx.session
    row = await _load(session, data.id)
    values, changes = _edits(row, data)
    system_ids = await system_ids_of(session, row.id)
    new_systems = False
    if data.system_ids is not msgspec.UNSET:
        wanted = await _check_systems(ctx, data.system_ids)
        if set(wanted) != set(system_ids):
            system_ids, new_systems = wanted, True
    while True:
        if new_systems:
            changes.append("systemIds")
        if not changes:
            return _incident(row, system_ids)
        if await _claim(session, row, {**values, "updated_at": utcnow()}):
            break
        # A concurrent change came first: compare with what it stored.
        values, changes = _edits(row, data)
    if new_systems:
        # Read again now that this transaction holds the incident: a concurrent edit of its
        # systems has committed by now (it claims the incident first, too).
        current = await system_ids_of(session, row.id)
        await session.exec(
            sa.delete(IncidentSystem).where(
                col(IncidentSystem.incident_id) == row.id,
                col(IncidentSystem.system_id).not_in(system_ids),
            )
        )
        session.add_all(
            IncidentSystem(incident_id=row.id, system_id=s) for s in system_ids if s not in current
        )
        await session.flush()
    incident = _incident(row, system_ids)
    await ctx.emit(INCIDENT_UPDATED, _payload(incident, changes=changes, entryId=None))
    return incident


async def _record(
    ctx: Context,
    row: IncidentRow,
    message: str,
    to_status: str | None,
    *,
    refuse_resolved: bool = False,
) -> UpdateResult:
    """Add a timeline entry to ``row``, setting ``to_status`` when it differs from the current.

    Resolving sets ``resolvedAt``; leaving ``resolved`` reopens: ``resolvedAt`` is cleared and
    the entry's kind is ``reopened``. ``refuse_resolved``: CONFLICT when the incident is resolved
    (checked again if a concurrent change came first).
    """
    session = ctx.session
    while True:
        if refuse_resolved and row.status == RESOLVED:
            raise Conflict(f"Incident already resolved: {row.id}")
        now = utcnow()
        from_status = row.status
        changed = to_status is not None and to_status != from_status
        values: dict[str, Any] = {"updated_at": now}
        kind = "update"
        if changed and to_status == RESOLVED:
            kind = "resolved"
            values["resolved_at"] = now
        elif changed and from_status == RESOLVED:
            kind = "reopened"
            values["resolved_at"] = None
        if changed:
            values["status"] = to_status
        if await _claim(session, row, values):
            break
    entry = _add_entry(
        ctx,
        row.id,
        kind,
        message,
        status=to_status if changed else None,
        from_status=from_status if changed else None,
        at=now,
    )
    await session.flush()
    incident = _incident(row, await system_ids_of(session, row.id))
    changes = ["timeline", "status"] if changed else ["timeline"]
    await ctx.emit(INCIDENT_UPDATED, _payload(incident, changes=changes, entryId=entry.id))
    if changed and to_status is not None:
        await _emit_status_change(ctx, incident, from_status, to_status)
    return UpdateResult(incident=incident, entry=_entry(entry))


async def add_update(ctx: Context, data: AddUpdateInput) -> UpdateResult:
    message = _text(data.message, "message")
    row = await _load(ctx.session, data.id)
    return await _record(ctx, row, message, data.status)


async def resolve_incident(ctx: Context, incident_id: str, message: str | None) -> UpdateResult:
    """Resolve an open incident; CONFLICT when it already is resolved."""
    text = _text(message, "message") if message is not None else RESOLVED_MESSAGE
    row = await _load(ctx.session, incident_id)
    return await _record(ctx, row, text, RESOLVED, refuse_resolved=True)


async def delete_incident(ctx: Context, incident_id: str) -> None:
    """Delete the incident and its timeline (NOT_FOUND for the loser of concurrent deletions)."""
    session = ctx.session
    row = await _load(session, incident_id)
    title = row.title
    system_ids = await system_ids_of(session, incident_id)
    # Explicit deletes, although the foreign keys cascade: no reliance on SQLite's pragma.
    for table in (TimelineRow, IncidentSystem):
        await session.exec(sa.delete(table).where(col(table.incident_id) == incident_id))
    deleted = await session.exec(sa.delete(IncidentRow).where(col(IncidentRow.id) == incident_id))
    if deleted.rowcount != 1:
        raise NotFound(f"Incident not found: {incident_id}")
    session.expunge(row)
    await ctx.emit(
        INCIDENT_DELETED, {"incidentId": incident_id, "title": title, "systemIds": system_ids}
    )


async def forget_system(ctx: Context, system_id: str, system_name: str | None) -> int:
    """Remove a deleted catalog system from every incident, with a timeline entry on each.

    Returns how many incidents changed. Idempotent: a second delivery finds nothing to remove.
    An incident left without systems is kept (its history matters), neither resolved nor
    deleted, and stays visible to holders of the read rule.
    """
    session = ctx.session
    affected = list(
        (
            await session.exec(
                select(IncidentSystem.incident_id).where(IncidentSystem.system_id == system_id)
            )
        ).all()
    )
    if not affected:
        return 0
    await session.exec(sa.delete(IncidentSystem).where(col(IncidentSystem.system_id) == system_id))
    label = f"{system_name} ({system_id})" if system_name else system_id
    message = f"System {label} was deleted from the catalog and removed from this incident"
    rows = (await session.exec(select(IncidentRow).where(col(IncidentRow.id).in_(affected)))).all()
    remaining = await _systems_by_incident(session, [r.id for r in rows])
    now = utcnow()
    for row in rows:
        await _touch(session, row, now)
        entry = _add_entry(ctx, row.id, "system_removed", message, at=now)
        incident = _incident(row, remaining[row.id])
        await ctx.emit(
            INCIDENT_UPDATED, _payload(incident, changes=["systemIds"], entryId=entry.id)
        )
    await session.flush()
    return len(rows)
