"""A test-only plugin with team-guarded resources, used by the core's dispatcher tests.

It exercises what the hello plugin does not: instance access (pre-check, list filtering,
record filtering), user-only and service-only procedures, uniqueness conflicts and failures, a
procedure guarded by two global rules (they combine with AND) and one whose handler records each
run (so batch tests can see that nothing ran, not only that nothing was kept).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlmodel import Field, SQLModel, select

from checkstack_core import (
    AccessRule,
    Conflict,
    Context,
    Contract,
    Handlers,
    InstanceAccess,
    NotFound,
    Plugin,
    Schema,
    mutation,
    query,
)

NOTE = "notes.note"
read = AccessRule("notes", "read", "Read notes", default=True)
manage = AccessRule("notes", "manage", "Change notes")
archive = AccessRule("archive", "manage", "Archive notes")
read_one = InstanceAccess(NOTE, id_param="id")
read_list = InstanceAccess(NOTE, list_key="notes")
read_record = InstanceAccess(NOTE, record_key="titles")
manage_many = InstanceAccess(NOTE, ids_param="ids")


class NoteRow(SQLModel, table=True):
    __tablename__ = "notes_note"

    id: str = Field(primary_key=True)
    title: str = Field(unique=True, max_length=200)


class NoteId(Schema):
    id: str


class NoteIds(Schema):
    ids: list[str]


class NewNote(Schema):
    title: str
    id: str | None = None


class NoteUpdate(Schema):
    id: str
    title: str


class Note(Schema):
    id: str
    title: str


class NoteList(Schema):
    notes: list[Note]


class NoteTitles(Schema):
    titles: dict[str, str]


class Retitle(Schema):
    title: str
    new_title: str


async def ids_by_title(ctx: Context, input: Retitle) -> list[str]:
    rows = (await ctx.session.exec(select(NoteRow).where(NoteRow.title == input.title))).all()
    return [row.id for row in rows]


class Count(Schema):
    count: int


class Mark(Schema):
    label: str


#: Labels of every ``markCalled`` run since the plugin started (reset on startup).
CALLS: list[str] = []


class Who(Schema):
    kind: str
    id: str | None


contract = Contract(
    "notes",
    rules=[read, manage, archive],
    procedures=[
        query("listNotes", output=NoteList, rules=[read], instance=read_list),
        query("publicNotes", output=NoteList, caller="public", rules=[read], instance=read_list),
        query("noteTitles", output=NoteTitles, rules=[read], instance=read_record),
        query("getNote", input=NoteId, output=Note, rules=[read], instance=read_one),
        query("countNotes", output=Count, caller="public", rules=[read]),
        mutation("createNote", input=NewNote, output=Note, rules=[manage], instance=read_one),
        mutation("updateNote", input=NoteUpdate, output=Note, rules=[manage], instance=read_one),
        mutation("deleteNotes", input=NoteIds, output=Count, rules=[manage], instance=manage_many),
        mutation("explode", input=NewNote, output=Note, rules=[manage]),
        mutation(
            "retitle",
            input=Retitle,
            output=Note,
            rules=[manage],
            instance=InstanceAccess(NOTE, resolve=ids_by_title),
        ),
        mutation("archiveNotes", output=Count, rules=[manage, archive]),
        mutation("markCalled", input=Mark, output=Count, rules=[read]),
        query("whoAmI", output=Who, caller="user"),
        query("internalCount", output=Count, caller="service"),
    ],
)
handlers = Handlers(contract)


async def _get(ctx: Context, note_id: str) -> NoteRow:
    row = await ctx.session.get(NoteRow, note_id)
    if row is None:
        raise NotFound(f"Note not found: {note_id}")
    return row


@handlers.implement("listNotes")
async def list_notes(ctx: Context, _: None) -> NoteList:
    rows = (await ctx.session.exec(select(NoteRow).order_by(NoteRow.title))).all()
    return NoteList(notes=[Note(id=r.id, title=r.title) for r in rows])


@handlers.implement("publicNotes")
async def public_notes(ctx: Context, _: None) -> NoteList:
    return await list_notes(ctx, None)


@handlers.implement("noteTitles")
async def note_titles(ctx: Context, _: None) -> NoteTitles:
    rows = (await ctx.session.exec(select(NoteRow))).all()
    return NoteTitles(titles={r.id: r.title for r in rows})


@handlers.implement("getNote")
async def get_note(ctx: Context, input: NoteId) -> Note:
    row = await _get(ctx, input.id)
    return Note(id=row.id, title=row.title)


@handlers.implement("countNotes")
async def count_notes(ctx: Context, _: None) -> Count:
    return Count(count=len((await ctx.session.exec(select(NoteRow))).all()))


@handlers.implement("internalCount")
async def internal_count(ctx: Context, _: None) -> Count:
    return await count_notes(ctx, None)


@handlers.implement("createNote")
async def create_note(ctx: Context, input: NewNote) -> Note:
    row = NoteRow(id=input.id or uuid.uuid4().hex, title=input.title)
    ctx.session.add(row)
    await ctx.session.flush()
    await ctx.emit("notes.note.created", {"id": row.id})
    return Note(id=row.id, title=row.title)


@handlers.implement("updateNote")
async def update_note(ctx: Context, input: NoteUpdate) -> Note:
    row = await _get(ctx, input.id)
    if input.title == "taken":
        raise Conflict("Title taken is reserved")
    row.title = input.title
    ctx.session.add(row)
    return Note(id=row.id, title=row.title)


@handlers.implement("deleteNotes")
async def delete_notes(ctx: Context, input: NoteIds) -> Count:
    for note_id in input.ids:
        await ctx.session.delete(await _get(ctx, note_id))
    return Count(count=len(input.ids))


@handlers.implement("explode")
async def explode(ctx: Context, input: NewNote) -> Note:
    raise RuntimeError(f"database password is hunter2 ({input.title})")


@handlers.implement("retitle")
async def retitle(ctx: Context, input: Retitle) -> Note:
    [note_id] = await ids_by_title(ctx, input) or [None]
    if note_id is None:
        raise NotFound(f"Note not found: {input.title}")
    row = await _get(ctx, note_id)
    row.title = input.new_title
    ctx.session.add(row)
    return Note(id=row.id, title=row.title)


@handlers.implement("archiveNotes")
async def archive_notes(ctx: Context, _: None) -> Count:
    return await count_notes(ctx, None)


@handlers.implement("markCalled")
async def mark_called(ctx: Context, input: Mark) -> Count:
    CALLS.append(input.label)
    return Count(count=len(CALLS))


@handlers.implement("whoAmI")
async def who_am_i(ctx: Context, _: None) -> Who:
    return Who(kind=str(ctx.principal.kind), id=ctx.principal.id)


plugin = Plugin(
    id="notes",
    name="Notes (test plugin)",
    contract=contract,
    handlers=handlers,
    models=[NoteRow],
    migrations=Path(__file__).parent / "migrations",
)


@plugin.on_startup
async def forget_calls(ctx: Context) -> None:
    CALLS.clear()
