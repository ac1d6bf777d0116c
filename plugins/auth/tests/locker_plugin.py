"""A test-only plugin whose resource type (``locker.crate``) is not named after the rules that
guard it (``locker.box.read``/``locker.box.manage``): it proves that grants are checked against
the rules that really guard a type, read from the contracts, and not a rule id guessed from the
type's name (which vault's ``vault.item`` ↔ ``vault.item.read`` happens to match)."""

from __future__ import annotations

from checkstack_core import (
    AccessRule,
    Context,
    Contract,
    Handlers,
    InstanceAccess,
    Plugin,
    Schema,
    query,
)

CRATE = "locker.crate"
READ = "locker.box.read"
read = AccessRule("box", "read", "Open crates", instance=InstanceAccess(CRATE, id_param="id"))
manage = AccessRule("box", "manage", "Move crates", instance=InstanceAccess(CRATE, id_param="id"))
#: A rule on no resource, listed first: the guarding rules after it must still be found.
inventory = AccessRule("inventory", "read", "Count crates")


class CrateId(Schema):
    id: str


contract = Contract(
    "locker",
    rules=[inventory, read, manage],
    procedures=[query("getCrate", input=CrateId, output=CrateId, rules=[read])],
)
handlers = Handlers(contract)


@handlers.implement("getCrate")
async def get_crate(ctx: Context, input: CrateId) -> CrateId:
    return input


plugin = Plugin(
    id="locker", name="Locker (test)", contract=contract, handlers=handlers, depends_on=["auth"]
)
