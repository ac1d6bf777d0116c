"""A test-only plugin for the dispatcher paths the notes plugin does not reach.

- ``inventory``: two filtered rules on one procedure (a list and a record), each filtering its
  own part of the output;
- ``move``: two pre-checked rules on one procedure, one of them reached through a dotted path
  (``shelf.id``) into an optional nested object;
- ``shaped``: a handler returning an object with attributes, a dict, or a wrong shape, so output
  conversion and output validation are seen from outside;
- ``misfiled``: a filtered rule whose ``list_key`` names a field that is not a list (a plugin
  author's mistake, which must fail rather than answer unfiltered);
- ``relay``/``stamp``: an in-process call that must see the outer request (its id) and write to
  the outer response;
- ``whoAmI``: a user-only procedure without rules;
- ``weigh``: a box found by a resolver from a number the caller gives (the id as an integer).

No tables: the handlers answer from constants, so only the dispatcher decides what is seen.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from checkstack_core import (
    AccessRule,
    Context,
    Contract,
    Handlers,
    InstanceAccess,
    Plugin,
    Schema,
    mutation,
    query,
)

SHELF = "probe.shelf"
BOX = "probe.box"
CRATE = "probe.crate"

shelf_read = AccessRule(
    "shelf", "read", "See shelves", instance=InstanceAccess(SHELF, list_key="shelves")
)
box_read = AccessRule("box", "read", "See boxes", instance=InstanceAccess(BOX, record_key="boxes"))
shelf_manage = AccessRule(
    "shelf", "manage", "Change shelves", instance=InstanceAccess(SHELF, id_param="shelf.id")
)
box_manage = AccessRule(
    "box", "manage", "Change boxes", instance=InstanceAccess(BOX, id_param="boxId")
)
# Declared on a record-shaped field as if it were a list: the mistake ``misfiled`` makes.
crate_read = AccessRule(
    "crate", "read", "See crates", instance=InstanceAccess(CRATE, list_key="crates")
)

SHELF_READ = "probe.shelf.read"
BOX_READ = "probe.box.read"
SHELF_MANAGE = "probe.shelf.manage"
BOX_MANAGE = "probe.box.manage"
CRATE_READ = "probe.crate.read"


class Shelf(Schema):
    id: str


class Inventory(Schema):
    shelves: list[Shelf]
    boxes: dict[str, str]


class Move(Schema):
    box_id: str
    shelf: Shelf | None = None


class Moved(Schema):
    box_id: str
    shelf_id: str | None


class Shape(Schema):
    how: str


class Label(Schema):
    id: str
    text: str


class Crates(Schema):
    crates: dict[str, str]


class Stamp(Schema):
    request_id: str | None
    has_request: bool


class Who(Schema):
    kind: str


class Weigh(Schema):
    box_number: int


class Weight(Schema):
    box_id: str


async def numbered_box(ctx: Context, input: Weigh) -> list[str]:
    return [str(input.box_number)]


contract = Contract(
    "probe",
    rules=[shelf_read, box_read, shelf_manage, box_manage, crate_read],
    procedures=[
        query("inventory", output=Inventory, caller="public", rules=[shelf_read, box_read]),
        mutation("move", input=Move, output=Moved, rules=[shelf_manage, box_manage]),
        query("shaped", input=Shape, output=Label, caller="public"),
        query("misfiled", output=Crates, rules=[crate_read]),
        query("relay", output=Stamp, caller="public"),
        query("stamp", output=Stamp, caller="public"),
        query("whoAmI", output=Who, caller="user"),
        mutation(
            "weigh",
            input=Weigh,
            output=Weight,
            rules=[box_manage],
            instance=InstanceAccess(BOX, resolve=numbered_box),
        ),
    ],
)
handlers = Handlers(contract)

SHELVES = ["s1", "s2"]
BOXES = {"b1": "first box", "b2": "second box"}
#: The response header ``stamp`` sets (seen on the HTTP response of the call that relayed it).
STAMP_HEADER = "x-probe-stamp"


@handlers.implement("inventory")
async def inventory(ctx: Context, _: None) -> Inventory:
    return Inventory(shelves=[Shelf(id=s) for s in SHELVES], boxes=dict(BOXES))


@handlers.implement("move")
async def move(ctx: Context, input: Move) -> Moved:
    return Moved(box_id=input.box_id, shelf_id=input.shelf.id if input.shelf else None)


@handlers.implement("shaped")
async def shaped(ctx: Context, input: Shape) -> Any:
    if input.how == "object":  # e.g. an ORM row: converted from its attributes
        return SimpleNamespace(id="l1", text="from attributes")
    if input.how == "dict":
        return {"id": "l2", "text": "from a dict"}
    return {"id": 3}  # neither a string id nor any text: not a Label


@handlers.implement("misfiled")
async def misfiled(ctx: Context, _: None) -> Crates:
    return Crates(crates={"c1": "a crate"})


@handlers.implement("relay")
async def relay(ctx: Context, _: None) -> Stamp:
    stamp: Stamp = await ctx.call("probe", "stamp")
    return stamp


@handlers.implement("stamp")
async def stamp(ctx: Context, _: None) -> Stamp:
    ctx.response.headers[STAMP_HEADER] = "stamped"
    return Stamp(request_id=ctx.request_id, has_request=ctx.request is not None)


@handlers.implement("whoAmI")
async def who_am_i(ctx: Context, _: None) -> Who:
    return Who(kind=str(ctx.principal.kind))


@handlers.implement("weigh")
async def weigh(ctx: Context, input: Weigh) -> Weight:
    return Weight(box_id=str(input.box_number))


plugin = Plugin(
    id="probe",
    name="Probe (test plugin)",
    contract=contract,
    handlers=handlers,
)

#: A plugin without a contract (hooks and services only): it has no procedures to call.
bare = Plugin(id="bare", name="No contract (test plugin)")
