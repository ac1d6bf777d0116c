"""Groups and membership: many-to-many, idempotent adds and removes, deletion, events."""

from __future__ import annotations

import pytest
from checkstack_catalog.contract import GROUP_CREATED, GROUP_DELETED, GROUP_UPDATED
from checkstack_catalog.models import MembershipRow
from sqlmodel import select

from checkstack_core import Conflict, Context, Event, NotFound, Plugin


async def test_create_update_and_list_groups(manager, anonymous):
    created = await manager.call(
        "catalog",
        "createGroup",
        {"name": " Core ", "description": "Backbone", "metadata": {"o": 1}},
    )
    assert created["name"] == "Core"
    assert created["description"] == "Backbone"
    assert created["metadata"] == {"o": 1}
    assert created["systemIds"] == []

    await manager.call("catalog", "createGroup", {"name": "apps"})
    listed = await anonymous.call("catalog", "getGroups")
    assert [g["name"] for g in listed["groups"]] == ["apps", "Core"]

    updated = await manager.call(
        "catalog", "updateGroup", {"id": created["id"], "name": "Core services"}
    )
    assert updated["name"] == "Core services"
    assert updated["description"] == "Backbone"
    cleared = await manager.call(
        "catalog", "updateGroup", {"id": created["id"], "description": None, "metadata": {}}
    )
    assert cleared["description"] is None
    assert cleared["metadata"] == {}
    assert cleared["name"] == "Core services"


async def test_group_names_are_unique_ignoring_case(manager):
    await manager.call("catalog", "createGroup", {"name": "Edge"})
    with pytest.raises(Conflict, match='A group named "EDGE" already exists'):
        await manager.call("catalog", "createGroup", {"name": "EDGE"})
    other = await manager.call("catalog", "createGroup", {"name": "Core"})
    with pytest.raises(Conflict, match='A group named "edge" already exists'):
        await manager.call("catalog", "updateGroup", {"id": other["id"], "name": "edge"})


async def test_membership_is_many_to_many(manager, anonymous):
    api = await manager.call("catalog", "createSystem", {"name": "API"})
    db = await manager.call("catalog", "createSystem", {"name": "DB"})
    prod = await manager.call("catalog", "createGroup", {"name": "Production"})
    eu = await manager.call("catalog", "createGroup", {"name": "EU"})

    for group in (prod, eu):
        for system in (db, api):
            result = await manager.call(
                "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]}
            )
    assert result["systemIds"] == [api["id"], db["id"]]  # by system name

    fetched = await anonymous.call("catalog", "getSystem", {"id": api["id"]})
    assert fetched["groupIds"] == [eu["id"], prod["id"]]  # by group name
    groups = await anonymous.call("catalog", "getGroups")
    assert [g["systemIds"] for g in groups["groups"]] == [[api["id"], db["id"]]] * 2

    removed = await manager.call(
        "catalog", "removeSystemFromGroup", {"groupId": prod["id"], "systemId": api["id"]}
    )
    assert removed["systemIds"] == [db["id"]]
    fetched = await anonymous.call("catalog", "getSystem", {"id": api["id"]})
    assert fetched["groupIds"] == [eu["id"]]


async def test_adding_twice_and_removing_a_non_member_change_nothing(manager, checkstack_host):
    system = await manager.call("catalog", "createSystem", {"name": "Jobs"})
    group = await manager.call("catalog", "createGroup", {"name": "Batch"})
    pair = {"groupId": group["id"], "systemId": system["id"]}

    first = await manager.call("catalog", "addSystemToGroup", pair)
    second = await manager.call("catalog", "addSystemToGroup", pair)
    assert first == second
    assert second["systemIds"] == [system["id"]]
    async with checkstack_host.db.session() as session:
        assert len((await session.exec(select(MembershipRow))).all()) == 1

    removed = await manager.call("catalog", "removeSystemFromGroup", pair)
    again = await manager.call("catalog", "removeSystemFromGroup", pair)
    assert removed == again
    assert again["systemIds"] == []


@pytest.mark.parametrize("procedure", ["addSystemToGroup", "removeSystemFromGroup"])
async def test_membership_of_unknown_ids_is_not_found(manager, procedure):
    system = await manager.call("catalog", "createSystem", {"name": "Real"})
    group = await manager.call("catalog", "createGroup", {"name": "Real"})
    with pytest.raises(NotFound, match="Group not found: nope"):
        await manager.call("catalog", procedure, {"groupId": "nope", "systemId": system["id"]})
    with pytest.raises(NotFound, match="System not found: nope"):
        await manager.call("catalog", procedure, {"groupId": group["id"], "systemId": "nope"})


async def test_deleting_a_group_keeps_its_systems(manager, anonymous, checkstack_host):
    system = await manager.call("catalog", "createSystem", {"name": "Auth"})
    group = await manager.call("catalog", "createGroup", {"name": "Identity"})
    await manager.call(
        "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]}
    )

    assert await manager.call("catalog", "deleteGroup", {"id": group["id"]}) == {"id": group["id"]}

    assert (await anonymous.call("catalog", "getGroups")) == {"groups": []}
    fetched = await anonymous.call("catalog", "getSystem", {"id": system["id"]})
    assert fetched["groupIds"] == []
    async with checkstack_host.db.session() as session:
        assert (await session.exec(select(MembershipRow))).all() == []
    with pytest.raises(NotFound, match=f"Group not found: {group['id']}"):
        await manager.call("catalog", "deleteGroup", {"id": group["id"]})
    with pytest.raises(NotFound, match=f"Group not found: {group['id']}"):
        await manager.call("catalog", "updateGroup", {"id": group["id"], "name": "Back"})


class TestGroupEvents:
    @pytest.fixture
    def seen(self) -> list[tuple[str, dict]]:
        return []

    @pytest.fixture
    def checkstack_plugins(
        self, checkstack_plugins: list[Plugin], seen: list[tuple[str, dict]]
    ) -> list[Plugin]:
        listener = Plugin(id="listener", name="Listener", depends_on=["catalog"])
        for name in (GROUP_CREATED, GROUP_UPDATED, GROUP_DELETED):

            @listener.on_event(name)
            async def remember(ctx: Context, event: Event) -> None:
                seen.append((event.name, event.payload))

        return [*checkstack_plugins, listener]

    async def test_group_changes_are_announced(self, manager, checkstack_host, seen):
        system = await manager.call("catalog", "createSystem", {"name": "S"})
        group = await manager.call("catalog", "createGroup", {"name": "G"})
        pair = {"groupId": group["id"], "systemId": system["id"]}
        await manager.call("catalog", "addSystemToGroup", pair)
        await manager.call("catalog", "addSystemToGroup", pair)  # no change, no event
        await manager.call("catalog", "deleteGroup", {"id": group["id"]})
        await checkstack_host.events.drain()
        gid = group["id"]
        assert seen == [
            (GROUP_CREATED, {"groupId": gid, "groupName": "G"}),
            (GROUP_UPDATED, {"groupId": gid, "groupName": "G"}),
            (
                GROUP_DELETED,
                {
                    "groupId": gid,
                    "groupName": "G",
                    "resourceType": "catalog.group",
                    "resourceId": gid,
                },
            ),
        ]
