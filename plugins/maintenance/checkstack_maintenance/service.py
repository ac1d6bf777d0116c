"""Domain logic of the maintenance plugin: windows, the status machine, the timeline, automatic
transitions and access to windows through the systems they affect.

Status machine::

    scheduled ──► in_progress ──► completed
        │              │
        └──► cancelled ◄┘

Every status change (manual or automatic) adds a timeline entry and emits
``maintenance.window.status_changed``. Automatic transitions run as once-jobs keyed
``maintenance:<id>:start`` / ``maintenance:<id>:end``; the job handler re-reads the window and
applies only what is due and legal, so stale or repeated runs do nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import msgspec
from sqlalchemy import Integer, Row, bindparam, delete, exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Conflict, Context, Level, NotFound
from checkstack_core.auth import Principal
from checkstack_core.db import Database, core_rows, update_unless_moved, utcnow
from checkstack_core.errors import validation_error

from .contract import (
    ACTIVE_STATUSES,
    READ,
    SYSTEM,
    WINDOW_CANCELLED,
    WINDOW_COMPLETED,
    WINDOW_CREATED,
    WINDOW_DELETED,
    WINDOW_STATUS_CHANGED,
    WINDOW_UPDATED,
    ActiveWindows,
    AddUpdateInput,
    Author,
    CloseWindowInput,
    DeletedWindow,
    GetWindowsInput,
    ScheduleWindowInput,
    Status,
    SystemIdInput,
    TimelineEntry,
    TimelineKind,
    UpdateWindowInput,
    Window,
    WindowDetail,
    WindowId,
    WindowList,
)
from .models import TimelineRow, WindowRow, WindowSystemRow

TRANSITION_JOB = "maintenance.transition"
SWEEP_JOB = "maintenance.sweep"
SWEEP_KEY = "maintenance:sweep"
#: How often the safety-net sweep looks for overdue transitions the once-jobs missed (a window
#: changed by another process, a lost event).
SWEEP_EVERY = timedelta(seconds=30)

#: The author of automatic changes (scheduled transitions, cleanup after a system deletion).
SYSTEM_AUTHOR = Author(kind="system", id="maintenance", name="Maintenance scheduler")

LEGAL_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("scheduled", "in_progress"),
        ("in_progress", "completed"),
        ("scheduled", "cancelled"),
        ("in_progress", "cancelled"),
    }
)
_VERB = {"in_progress": "start", "completed": "complete", "cancelled": "cancel"}
_LABEL = {
    "scheduled": "a scheduled",
    "in_progress": "an in-progress",
    "completed": "a completed",
    "cancelled": "a cancelled",
}


def start_key(window_id: str) -> str:
    """The job key of a window's automatic start."""
    return f"maintenance:{window_id}:start"


def end_key(window_id: str) -> str:
    """The job key of a window's automatic completion."""
    return f"maintenance:{window_id}:end"


# -- small helpers ---------------------------------------------------------------------------------


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _clip(value: str | None, limit: int) -> str | None:
    # Principal names come from elsewhere; PostgreSQL refuses values longer than the column.
    return value[:limit] if value is not None else None


def author_of(principal: Principal) -> Author:
    """The timeline author for ``principal``."""
    return Author(
        kind=str(principal.kind), id=_clip(principal.id, 100), name=_clip(principal.name, 200)
    )


def check_transition(current: str, target: str) -> None:
    """Raise CONFLICT naming the transition unless ``current → target`` is legal."""
    if (current, target) in LEGAL_TRANSITIONS:
        return
    if target == "scheduled":
        message = f"Cannot move {_LABEL[current]} maintenance window back to scheduled"
    else:
        message = f"Cannot {_VERB[target]} {_LABEL[current]} maintenance window"
    raise Conflict(message, data={"fromStatus": current, "toStatus": target})


def to_window(row: WindowRow, system_ids: Sequence[str]) -> Window:
    """The wire shape of a window showing ``system_ids``."""
    created_by = (
        Author(kind=row.created_by_kind, id=row.created_by_id, name=row.created_by_name)
        if row.created_by_kind
        else None
    )
    return Window(
        id=row.id,
        title=row.title,
        description=row.description,
        start_at=row.start_at,
        end_at=row.end_at,
        system_ids=list(system_ids),
        suppress_notifications=row.suppress_notifications,
        # Only valid values are stored: the inputs are validated against the same literals.
        status=cast(Status, row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=created_by,
    )


def to_entry(row: TimelineRow) -> TimelineEntry:
    """The wire shape of a timeline entry."""
    return TimelineEntry(
        id=row.id,
        window_id=row.window_id,
        kind=cast(TimelineKind, row.kind),
        message=row.message,
        author=Author(kind=row.author_kind, id=row.author_id, name=row.author_name),
        created_at=row.created_at,
        from_status=cast("Status | None", row.from_status),
        to_status=cast("Status | None", row.to_status),
    )


# Lists are built from columns (Core ``SELECT``s joined to the windows' systems), not ORM
# instances: a round trip and the identity map's bookkeeping per row are what a read costs most.

_WINDOW_COLUMNS: tuple[Any, ...] = (
    col(WindowRow.id),
    col(WindowRow.title),
    col(WindowRow.description),
    col(WindowRow.start_at),
    col(WindowRow.end_at),
    col(WindowRow.suppress_notifications),
    col(WindowRow.status),
    col(WindowRow.created_at),
    col(WindowRow.updated_at),
    col(WindowRow.created_by_kind),
    col(WindowRow.created_by_id),
    col(WindowRow.created_by_name),
)


def _windows_from(
    rows: Sequence[Row[Any]], systems: dict[str, list[str]], readable: set[str]
) -> list[Window]:
    """Windows from rows starting with ``_WINDOW_COLUMNS``, listing their ``readable``
    systems."""
    return [
        Window(
            id=row.id,
            title=row.title,
            description=row.description,
            start_at=row.start_at,
            end_at=row.end_at,
            system_ids=[s for s in systems[row.id] if s in readable],
            suppress_notifications=row.suppress_notifications,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
            created_by=Author(
                kind=row.created_by_kind, id=row.created_by_id, name=row.created_by_name
            )
            if row.created_by_kind
            else None,
        )
        for row in rows
    ]


def _payload(row: WindowRow, system_ids: Sequence[str], **extra: Any) -> dict[str, Any]:
    return {
        "windowId": row.id,
        "title": row.title,
        "status": row.status,
        "startAt": row.start_at.isoformat(),
        "endAt": row.end_at.isoformat(),
        "systemIds": list(system_ids),
        "suppressNotifications": row.suppress_notifications,
        **extra,
    }


# -- reading ---------------------------------------------------------------------------------------


async def load_window(session: AsyncSession, window_id: str, *, fresh: bool = False) -> WindowRow:
    """The window ``window_id``, or NOT_FOUND. ``fresh`` overwrites the session's copy with the
    stored row (after a guarded write found the window changed)."""
    statement = select(WindowRow).where(col(WindowRow.id) == window_id)
    if fresh:
        statement = statement.execution_options(populate_existing=True)
    row = (await session.exec(statement)).first()
    if row is None:
        raise NotFound(f"Maintenance window not found: {window_id}")
    return row


# Statements of the hottest reads, built once (building and keying one costs more than running it).
_SYSTEMS_OF = (
    sa_select(col(WindowSystemRow.window_id), col(WindowSystemRow.system_id))
    .where(col(WindowSystemRow.window_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(WindowSystemRow.system_id))
)
_ALL_AFFECTED_SYSTEMS = sa_select(col(WindowSystemRow.system_id)).distinct()
_ORDER = (col(WindowRow.start_at).desc(), col(WindowRow.id).desc())
_PAGE_OF_ALL = (
    sa_select(*_WINDOW_COLUMNS, func.count().over())
    .order_by(*_ORDER)
    .offset(bindparam("offset", type_=Integer))
    .limit(bindparam("limit", type_=Integer))
)


async def systems_of(session: AsyncSession, window_ids: Sequence[str]) -> dict[str, list[str]]:
    """The affected system ids of each window, sorted."""
    result: dict[str, list[str]] = {window_id: [] for window_id in window_ids}
    if not window_ids:
        return result
    connection = await session.connection()
    rows = await connection.execute(_SYSTEMS_OF, {"ids": list(window_ids)})
    for window_id, system_id in rows:
        result[window_id].append(system_id)
    return result


async def _systems(session: AsyncSession, window_id: str) -> list[str]:
    return (await systems_of(session, [window_id]))[window_id]


async def _readable(ctx: Context, ids: Iterable[str]) -> set[str]:
    ids = _unique(ids)
    if not ids:
        return set()
    return await ctx.admitted_ids(SYSTEM, ids, Level.READ, rule_id=READ)


class SystemsLookup:
    """The ``WINDOW_SYSTEMS`` service the contract's access resolvers ask (in the call's
    transaction, before any handler runs)."""

    async def of_window(self, ctx: Context, window_id: str) -> list[str]:
        return await _systems(ctx.session, window_id)


# -- queries ---------------------------------------------------------------------------------------


async def list_windows(ctx: Context, input: GetWindowsInput) -> WindowList:
    """``getWindows``: filtered, access-filtered in the query, newest start first, one page."""
    if input.from_ is not None and input.to is not None and input.to <= input.from_:
        raise validation_error([{"message": "to must be after from", "path": ["to"]}])
    session = ctx.session
    conditions: list[Any] = []
    if input.status is not None:
        statuses = [input.status] if isinstance(input.status, str) else input.status
        conditions.append(col(WindowRow.status).in_(statuses))
    if input.system_id is not None:
        conditions.append(
            col(WindowRow.id).in_(
                select(WindowSystemRow.window_id).where(
                    col(WindowSystemRow.system_id) == input.system_id
                )
            )
        )
    if input.from_ is not None:
        conditions.append(col(WindowRow.end_at) > input.from_)
    if input.to is not None:
        conditions.append(col(WindowRow.start_at) < input.to)

    # One access decision for every system the matching windows affect, then the visibility
    # filter, the count and the page all run in the database.
    if conditions:
        matching = select(WindowRow.id).where(*conditions)
        candidates = (
            await session.exec(
                select(WindowSystemRow.system_id)
                .distinct()
                .where(col(WindowSystemRow.window_id).in_(matching))
            )
        ).all()
    else:
        candidates = [row[0] for row in await core_rows(session, _ALL_AFFECTED_SYSTEMS)]
    admitted = await _readable(ctx, candidates)
    if input.system_id is not None and input.system_id not in admitted:
        return WindowList(windows=[], total=0)
    if not conditions and ctx.principal.holds(READ) and len(admitted) == len(set(candidates)):
        # The common case (a status page): no filter, and the caller may read every affected
        # system, so every window is visible: one prepared page query.
        page = {"offset": input.offset, "limit": input.limit}
        connection = await session.connection()
        rows: Sequence[Row[Any]] = (await connection.execute(_PAGE_OF_ALL, page)).all()
        total = rows[0][-1] if rows else 0
        if not rows and input.offset:
            total = (await core_rows(session, sa_select(func.count()).select_from(WindowRow)))[0][0]
        systems = await systems_of(session, [row.id for row in rows])
        return WindowList(windows=_windows_from(rows, systems, admitted), total=total)
    visible: Any = col(WindowRow.id).in_(
        select(WindowSystemRow.window_id).where(
            col(WindowSystemRow.system_id).in_(sorted(admitted))
        )
    )
    if ctx.principal.holds(READ):
        # A window left without systems is guarded by the global rule alone.
        visible = or_(visible, ~exists().where(col(WindowSystemRow.window_id) == col(WindowRow.id)))
    # The page and how many match in all (a window function, computed before LIMIT) in one
    # query, then the page's systems in another.
    rows = await core_rows(
        session,
        sa_select(*_WINDOW_COLUMNS, func.count().over())
        .where(*conditions, visible)
        .order_by(col(WindowRow.start_at).desc(), col(WindowRow.id).desc())
        .offset(input.offset)
        .limit(input.limit),
    )
    if rows:
        total = rows[0][-1]
    elif input.offset:
        # A page past the end says nothing about the total: count.
        counted = sa_select(func.count()).select_from(WindowRow).where(*conditions, visible)
        total = (await core_rows(session, counted))[0][0]
    else:
        total = 0
    systems = await systems_of(session, [row.id for row in rows])
    return WindowList(windows=_windows_from(rows, systems, admitted), total=total)


async def get_window(ctx: Context, input: WindowId) -> WindowDetail:
    """``getWindow``: the window, its readable systems and its timeline, oldest entry first."""
    row = await load_window(ctx.session, input.id)
    system_ids = await _systems(ctx.session, row.id)
    admitted = await _readable(ctx, system_ids)
    entries = (
        await ctx.session.exec(
            select(TimelineRow)
            .where(col(TimelineRow.window_id) == row.id)
            .order_by(col(TimelineRow.created_at), col(TimelineRow.seq))
        )
    ).all()
    window = to_window(row, [s for s in system_ids if s in admitted])
    return WindowDetail(
        **{f: getattr(window, f) for f in window.__struct_fields__},
        timeline=[to_entry(e) for e in entries],
    )


async def active_windows_for_system(ctx: Context, input: SystemIdInput) -> ActiveWindows:
    """``getActiveWindowsForSystem``: in-progress windows affecting the system."""
    rows = await core_rows(
        ctx.session,
        sa_select(*_WINDOW_COLUMNS)
        .where(
            col(WindowRow.status) == "in_progress",
            col(WindowRow.id).in_(
                select(WindowSystemRow.window_id).where(
                    col(WindowSystemRow.system_id) == input.system_id
                )
            ),
        )
        .order_by(col(WindowRow.start_at).desc(), col(WindowRow.id).desc()),
    )
    systems = await systems_of(ctx.session, [row.id for row in rows])
    admitted = await _readable(ctx, (s for ids in systems.values() for s in ids))
    return ActiveWindows(windows=_windows_from(rows, systems, admitted))


async def is_suppressed(session: AsyncSession, system_id: str, at: datetime | None = None) -> bool:
    """Whether a suppressing window affects ``system_id``: now (status ``in_progress``) or, with
    ``at``, by plan (not cancelled, ``startAt <= at < endAt``)."""
    conditions: list[Any] = [
        col(WindowRow.suppress_notifications).is_(True),
        col(WindowRow.id).in_(
            select(WindowSystemRow.window_id).where(col(WindowSystemRow.system_id) == system_id)
        ),
    ]
    if at is None:
        conditions.append(col(WindowRow.status) == "in_progress")
    else:
        conditions += [
            col(WindowRow.status) != "cancelled",
            col(WindowRow.start_at) <= at,
            col(WindowRow.end_at) > at,
        ]
    found = await session.exec(select(WindowRow.id).where(*conditions).limit(1))
    return found.first() is not None


class WindowStatusService:
    """The ``maintenance.status`` service: on the caller's connection when given its context,
    else in a short read of its own (e.g. the healthcheck scheduler between calls)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def suppressed(
        self, system_id: str, at: datetime | None = None, *, ctx: Context | None = None
    ) -> bool:
        """See :meth:`MaintenanceStatus.suppressed`."""
        if ctx is not None:
            return await is_suppressed(ctx.session, system_id, at)
        async with self._db.session(read_only=True) as session:
            return await is_suppressed(session, system_id, at)


# -- changes ---------------------------------------------------------------------------------------


async def _add_entry(
    ctx: Context,
    window_id: str,
    kind: str,
    message: str,
    author: Author,
    from_status: str | None = None,
    to_status: str | None = None,
) -> TimelineRow:
    entry = TimelineRow(
        id=str(uuid.uuid4()),
        window_id=window_id,
        kind=kind,
        message=message,
        from_status=from_status,
        to_status=to_status,
        author_kind=author.kind,
        author_id=author.id,
        author_name=author.name,
        created_at=utcnow(),
    )
    ctx.session.add(entry)
    await ctx.session.flush()
    return entry


async def _claim(session: AsyncSession, row: WindowRow, values: dict[str, Any]) -> bool:
    """Write ``values`` (attribute names) to the window unless its status moved since ``row``
    was read; every change of a window goes through here. When it moved, ``row`` is re-read
    (NOT_FOUND when the window is gone) and False is returned, so the caller validates again
    against what is stored now (see :func:`checkstack_core.db.update_unless_moved`)."""
    if await update_unless_moved(session, row, "status", values):
        return True
    await load_window(session, row.id, fresh=True)
    return False


async def _move(
    ctx: Context,
    row: WindowRow,
    system_ids: Sequence[str],
    target: Status,
    author: Author,
    message: str,
) -> TimelineRow | None:
    """Move ``row`` from its status to ``target`` unless the status moved meanwhile (then
    ``None``, with ``row`` re-read); record the change once and emit its events."""
    current = row.status
    if not await _claim(ctx.session, row, {"status": target, "updated_at": utcnow()}):
        return None
    entry = await _add_entry(ctx, row.id, "status", message, author, current, target)
    ids = list(system_ids)
    await ctx.emit(
        WINDOW_STATUS_CHANGED,
        {"windowId": row.id, "fromStatus": current, "toStatus": target, "systemIds": ids},
    )
    if target == "completed":
        await ctx.emit(WINDOW_COMPLETED, {"windowId": row.id, "systemIds": ids})
    elif target == "cancelled":
        await ctx.emit(WINDOW_CANCELLED, {"windowId": row.id, "systemIds": ids})
    return entry


async def _transition(
    ctx: Context,
    row: WindowRow,
    system_ids: Sequence[str],
    target: Status,
    author: Author,
    message: str,
) -> TimelineRow:
    """Move ``row`` to ``target``: CONFLICT naming the transition unless it is legal from the
    stored status (checked again when a concurrent change moved it first)."""
    while True:
        check_transition(row.status, target)
        entry = await _move(ctx, row, system_ids, target, author, message)
        if entry is not None:
            return entry


def _due(row: WindowRow) -> tuple[Status, str] | None:
    """The automatic transition ``row`` is due for now, with its message."""
    if row.status == "scheduled" and row.start_at <= utcnow():
        return "in_progress", "Maintenance started automatically"
    if row.status == "in_progress" and row.end_at <= utcnow():
        return "completed", "Maintenance completed automatically"
    return None


async def advance(ctx: Context, row: WindowRow, system_ids: Sequence[str]) -> bool:
    """Apply every automatic transition that is due, in order; whether anything changed.

    A change that won a race against this one (a manual completion, another process's job) is
    simply taken as the new state: what is due is decided again from the stored window.
    """
    changed = False
    while (due := _due(row)) is not None:
        target, message = due
        if await _move(ctx, row, system_ids, target, SYSTEM_AUTHOR, message) is not None:
            changed = True
    return changed


async def _require_systems(ctx: Context, system_ids: list[str]) -> None:
    """NOT_FOUND for the first id the catalog does not know."""
    resolved = await ctx.call("catalog", "resolveSystems", {"ids": system_ids}, as_service=True)
    missing = set(msgspec.to_builtins(resolved)["missing"])
    for system_id in system_ids:
        if system_id in missing:
            raise NotFound(f"System not found: {system_id}")


def _blank(value: str) -> bool:
    return not value.strip()


async def schedule_window(ctx: Context, input: ScheduleWindowInput) -> Window:
    """``scheduleWindow``. A window whose start has passed starts at once (same transaction)."""
    issues = []
    if _blank(input.title):
        issues.append({"message": "title must not be blank", "path": ["title"]})
    if input.end_at <= input.start_at:
        issues.append({"message": "endAt must be after startAt", "path": ["endAt"]})
    elif input.end_at <= utcnow():
        issues.append({"message": "endAt must be in the future", "path": ["endAt"]})
    if issues:
        raise validation_error(issues)
    system_ids = _unique(input.system_ids)
    await _require_systems(ctx, system_ids)
    author = author_of(ctx.principal)
    now = utcnow()
    row = WindowRow(
        id=str(uuid.uuid4()),
        title=input.title.strip(),
        description=(input.description or "").strip() or None,
        start_at=input.start_at,
        end_at=input.end_at,
        suppress_notifications=input.suppress_notifications,
        status="scheduled",
        created_at=now,
        updated_at=now,
        created_by_kind=author.kind,
        created_by_id=author.id,
        created_by_name=author.name,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.session.add_all(WindowSystemRow(window_id=row.id, system_id=s) for s in system_ids)
    system_ids.sort()
    await _add_entry(ctx, row.id, "created", "Maintenance scheduled", author)
    await ctx.emit(WINDOW_CREATED, _payload(row, system_ids))
    await advance(ctx, row, system_ids)
    return to_window(row, system_ids)


async def update_window(ctx: Context, input: UpdateWindowInput) -> Window:
    """``updateWindow``: edit a scheduled or in-progress window; revalidates its times."""
    session = ctx.session
    row = await load_window(session, input.id)
    _edits(row, input, systems_changed=False)  # refuse a bad edit before asking the catalog
    old_systems = await _systems(session, row.id)
    new_systems = old_systems
    if not isinstance(input.system_ids, msgspec.UnsetType):
        new_systems = sorted(_unique(input.system_ids))
        await _require_systems(ctx, [s for s in new_systems if s not in old_systems])
    systems_changed = new_systems != old_systems
    while True:
        values, changed = _edits(row, input, systems_changed=systems_changed)
        if not changed:
            return to_window(row, new_systems)
        # Validated against the status read: when a concurrent transition moved it first, the
        # edit is validated again against the stored window.
        if await _claim(session, row, {**values, "updated_at": utcnow()}):
            break
    if systems_changed:
        # Read again now that this transaction holds the window: a concurrent edit of its
        # systems has committed by now (it claims the window first, too).
        stored = await _systems(session, row.id)
        gone = [s for s in stored if s not in new_systems]
        if gone:
            await session.exec(
                delete(WindowSystemRow).where(
                    col(WindowSystemRow.window_id) == row.id,
                    col(WindowSystemRow.system_id).in_(gone),
                )
            )
        session.add_all(
            WindowSystemRow(window_id=row.id, system_id=s) for s in new_systems if s not in stored
        )
    author = author_of(ctx.principal)
    await _add_entry(ctx, row.id, "edited", "Changed " + ", ".join(changed), author)
    await ctx.emit(WINDOW_UPDATED, _payload(row, new_systems, kind="edited", changed=changed))
    await advance(ctx, row, new_systems)
    return to_window(row, new_systems)


def _edits(
    row: WindowRow, input: UpdateWindowInput, *, systems_changed: bool
) -> tuple[dict[str, Any], list[str]]:
    """The column values ``input`` changes on ``row`` and the wire names of what changes
    (CONFLICT or BAD_REQUEST when the edit is not allowed in the window's status or its times
    are wrong)."""
    if row.status not in ACTIVE_STATUSES:
        raise Conflict(
            f"Cannot edit {_LABEL[row.status]} maintenance window", data={"status": row.status}
        )
    unset = msgspec.UNSET
    start_at = row.start_at if input.start_at is unset else input.start_at
    end_at = row.end_at if input.end_at is unset else input.end_at
    assert isinstance(start_at, datetime) and isinstance(end_at, datetime)
    if row.status == "in_progress" and start_at != row.start_at:
        raise Conflict(
            "Cannot change the start of an in-progress maintenance window",
            data={"status": row.status},
        )
    issues = []
    if isinstance(input.title, str) and _blank(input.title):
        issues.append({"message": "title must not be blank", "path": ["title"]})
    if end_at <= start_at:
        path = "startAt" if input.end_at is unset else "endAt"
        issues.append({"message": "endAt must be after startAt", "path": [path]})
    elif end_at != row.end_at and end_at <= utcnow():
        issues.append({"message": "endAt must be in the future", "path": ["endAt"]})
    if issues:
        raise validation_error(issues)

    values: dict[str, Any] = {}
    changed: list[str] = []
    if isinstance(input.title, str) and input.title.strip() != row.title:
        values["title"] = input.title.strip()
        changed.append("title")
    if not isinstance(input.description, msgspec.UnsetType):
        description = (input.description or "").strip() or None
        if description != row.description:
            values["description"] = description
            changed.append("description")
    if start_at != row.start_at:
        values["start_at"] = start_at
        changed.append("startAt")
    if end_at != row.end_at:
        values["end_at"] = end_at
        changed.append("endAt")
    if systems_changed:
        changed.append("systemIds")
    if (
        not isinstance(input.suppress_notifications, msgspec.UnsetType)
        and input.suppress_notifications != row.suppress_notifications
    ):
        values["suppress_notifications"] = input.suppress_notifications
        changed.append("suppressNotifications")
    return values, changed


async def _touch(session: AsyncSession, row: WindowRow) -> None:
    """Mark ``row`` changed now (a message or an edit of its systems), in whatever status it is
    by the time this transaction writes it."""
    while not await _claim(session, row, {"updated_at": utcnow()}):
        pass


async def add_update(ctx: Context, input: AddUpdateInput) -> TimelineEntry:
    """``addUpdate``: a timeline message, optionally with a legal status change."""
    message = input.message.strip()
    if not message:
        raise validation_error([{"message": "message must not be blank", "path": ["message"]}])
    row = await load_window(ctx.session, input.id)
    system_ids = await _systems(ctx.session, row.id)
    author = author_of(ctx.principal)
    if input.status is not None:
        entry = await _transition(ctx, row, system_ids, input.status, author, message)
    else:
        await _touch(ctx.session, row)
        entry = await _add_entry(ctx, row.id, "update", message, author)
        await ctx.emit(WINDOW_UPDATED, _payload(row, system_ids, kind="update"))
    return to_entry(entry)


async def close_window(ctx: Context, input: CloseWindowInput, target: Status) -> Window:
    """``completeWindow`` / ``cancelWindow``."""
    row = await load_window(ctx.session, input.id)
    system_ids = await _systems(ctx.session, row.id)
    default = "Maintenance completed" if target == "completed" else "Maintenance cancelled"
    message = (input.message or "").strip() or default
    await _transition(ctx, row, system_ids, target, author_of(ctx.principal), message)
    return to_window(row, system_ids)


async def delete_window(ctx: Context, input: WindowId) -> DeletedWindow:
    """``deleteWindow``: the window, its systems and its timeline (NOT_FOUND for the loser of
    two concurrent deletions)."""
    session = ctx.session
    system_ids = await _systems(session, input.id)
    for table in (TimelineRow, WindowSystemRow):
        await session.exec(delete(table).where(col(table.window_id) == input.id))
    deleted = await session.exec(delete(WindowRow).where(col(WindowRow.id) == input.id))
    if deleted.rowcount != 1:
        raise NotFound(f"Maintenance window not found: {input.id}")
    await ctx.emit(WINDOW_DELETED, {"windowId": input.id, "systemIds": system_ids})
    return DeletedWindow(id=input.id)


# -- automatic transitions -------------------------------------------------------------------------


async def schedule_jobs(ctx: Context, row: WindowRow | None, window_id: str) -> None:
    """Make this process's transition jobs match the stored window (idempotent keys)."""
    if row is None or row.status not in ACTIVE_STATUSES:
        await ctx.jobs.cancel(start_key(window_id))
        await ctx.jobs.cancel(end_key(window_id))
        return
    payload = {"windowId": window_id}
    if row.status == "scheduled":
        await ctx.jobs.schedule_once(
            TRANSITION_JOB, key=start_key(window_id), run_at=row.start_at, payload=payload
        )
    else:
        await ctx.jobs.cancel(start_key(window_id))
    await ctx.jobs.schedule_once(
        TRANSITION_JOB, key=end_key(window_id), run_at=row.end_at, payload=payload
    )


async def sync_jobs(ctx: Context, window_id: str) -> None:
    """Re-read the window and (re)schedule or cancel its jobs (after a committed change)."""
    await schedule_jobs(ctx, await ctx.session.get(WindowRow, window_id), window_id)


async def run_transition(ctx: Context, window_id: str) -> None:
    """The transition job: apply what is due now (nothing for a cancelled or missing window),
    then reschedule from the stored times, which another process may have changed."""
    try:
        row = await load_window(ctx.session, window_id)
    except NotFound:
        await schedule_jobs(ctx, None, window_id)
        return
    await advance(ctx, row, await _systems(ctx.session, row.id))
    await schedule_jobs(ctx, row, window_id)


async def catch_up(ctx: Context, *, schedule: bool) -> int:
    """Apply every overdue transition (both, in order, when both times passed); with
    ``schedule``, also (re)schedule every pending one. Returns how many windows changed."""
    now = utcnow()
    statement = select(WindowRow).where(col(WindowRow.status).in_(ACTIVE_STATUSES))
    if not schedule:
        statement = statement.where(
            or_(
                (col(WindowRow.status) == "scheduled") & (col(WindowRow.start_at) <= now),
                (col(WindowRow.status) == "in_progress") & (col(WindowRow.end_at) <= now),
            )
        )
    statement = statement.order_by(col(WindowRow.id)).execution_options(populate_existing=True)
    rows = (await ctx.session.exec(statement)).all()
    systems = await systems_of(ctx.session, [r.id for r in rows])
    changed = 0
    for row in rows:
        if await advance(ctx, row, systems[row.id]):
            changed += 1
        await schedule_jobs(ctx, row, row.id)
    return changed


# -- cleanup ---------------------------------------------------------------------------------------


async def forget_system(ctx: Context, system_id: str, system_name: str | None) -> int:
    """Remove a deleted catalog system from every window (idempotent). A scheduled or in-progress
    window left without systems is cancelled; finished ones keep their history."""
    session = ctx.session
    window_ids = (
        await session.exec(
            select(WindowSystemRow.window_id)
            .where(col(WindowSystemRow.system_id) == system_id)
            .order_by(col(WindowSystemRow.window_id))
        )
    ).all()
    label = f"{system_name} ({system_id})" if system_name else system_id
    for window_id in window_ids:
        row = await load_window(session, window_id)
        await session.exec(
            delete(WindowSystemRow).where(
                col(WindowSystemRow.window_id) == window_id,
                col(WindowSystemRow.system_id) == system_id,
            )
        )
        remaining = await _systems(session, window_id)
        await _touch(session, row)
        await _add_entry(
            ctx,
            window_id,
            "edited",
            f"System {label} was deleted from the catalog and removed from this window",
            SYSTEM_AUTHOR,
        )
        await ctx.emit(
            WINDOW_UPDATED,
            _payload(row, remaining, kind="system_removed", removedSystemId=system_id),
        )
        message = "Maintenance cancelled automatically: none of its systems remain"
        while not remaining and row.status in ACTIVE_STATUSES:
            if await _move(ctx, row, remaining, "cancelled", SYSTEM_AUTHOR, message) is not None:
                break
    return len(window_ids)
