"""A test-only plugin with instance access on its resources (``vault.item``), standing in for
catalog in the team and resource-level access tests. Items live in memory."""

from __future__ import annotations

from checkstack_auth.contract import AUTH_ACCESS

from checkstack_core import (
    AccessRule,
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

ITEM = "vault.item"
read = AccessRule("item", "read", "Read vault items", instance=InstanceAccess(ITEM, id_param="id"))
manage = AccessRule(
    "item", "manage", "Change vault items", instance=InstanceAccess(ITEM, id_param="id")
)


class ItemId(Schema):
    id: str


class Item(Schema):
    id: str
    name: str


class ItemList(Schema):
    items: list[Item]


class Touch(Schema):
    """``id`` is optional: without it the manage rule must be held globally (never skipped)."""

    id: str | None = None


contract = Contract(
    "vault",
    rules=[read, manage],
    procedures=[
        query(
            "getItems",
            output=ItemList,
            rules=[read],
            instance=InstanceAccess(ITEM, list_key="items"),
        ),
        query("getItem", input=ItemId, output=Item, rules=[read]),
        mutation("createItem", input=Item, output=Item, rules=[manage], instance=None),
        mutation("updateItem", input=Item, output=Item, rules=[manage]),
        mutation("deleteItem", input=ItemId, output=ItemId, rules=[manage]),
        mutation("touchItem", input=Touch, output=Touch, rules=[manage]),
    ],
)
handlers = Handlers(contract)
ITEMS: dict[str, str] = {}


def _get(item_id: str) -> Item:
    if item_id not in ITEMS:
        raise NotFound(f"Item not found: {item_id}")
    return Item(id=item_id, name=ITEMS[item_id])


@handlers.implement("getItems")
async def get_items(ctx: Context, _input: None) -> ItemList:
    return ItemList(items=[Item(id=k, name=v) for k, v in sorted(ITEMS.items())])


@handlers.implement("getItem")
async def get_item(ctx: Context, input: ItemId) -> Item:
    return _get(input.id)


@handlers.implement("createItem")
async def create_item(ctx: Context, input: Item) -> Item:
    ITEMS[input.id] = input.name
    return input


@handlers.implement("updateItem")
async def update_item(ctx: Context, input: Item) -> Item:
    _get(input.id)
    ITEMS[input.id] = input.name
    return input


@handlers.implement("deleteItem")
async def delete_item(ctx: Context, input: ItemId) -> ItemId:
    _get(input.id)
    del ITEMS[input.id]
    # The convention for resource owners: tell the auth plugin, in the same transaction.
    await ctx.service(AUTH_ACCESS).forget_resource(ctx, ITEM, input.id)
    return input


@handlers.implement("touchItem")
async def touch_item(ctx: Context, input: Touch) -> Touch:
    return input


plugin = Plugin(
    id="vault", name="Vault (test)", contract=contract, handlers=handlers, depends_on=["auth"]
)


@plugin.on_startup
async def reset(ctx: Context) -> None:
    ITEMS.clear()
